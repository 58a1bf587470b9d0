//! Following the policy file: checked about once a second, replaced when it changed and
//! compiles, kept as it was (and the error logged) when the new text is invalid.

use std::path::PathBuf;
use std::time::Duration;

use crate::policy::Policy;
use crate::Gate;

/// How often the policy file is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

impl Gate {
    /// Spawns the task that follows the policy file at `path` (the file the policy in
    /// force was read from, whose text was `loaded`). It runs until the runtime stops.
    pub fn watch_policy_file(&self, path: PathBuf, loaded: Vec<u8>) -> tokio::task::JoinHandle<()> {
        let gate = self.clone();
        tokio::spawn(async move {
            let mut last = loaded;
            let mut read_failed = false;
            let mut ticks = tokio::time::interval(POLL_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // A small file read once a second: not worth a blocking-pool hop.
                let bytes = match std::fs::read(&path) {
                    Ok(b) => {
                        read_failed = false;
                        b
                    }
                    Err(e) => {
                        if !read_failed {
                            tracing::warn!(path = %path.display(), error = %e, "cannot read the policy file; keeping the policy in force");
                            read_failed = true;
                        }
                        continue;
                    }
                };
                if bytes == last {
                    continue;
                }
                let parsed = std::str::from_utf8(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|text| Policy::parse(text).map_err(|e| e.to_string()));
                match parsed {
                    Ok(policy) => {
                        let rules = policy.rules().len();
                        gate.0.policy.replace(policy);
                        gate.0.metrics.reloaded(true);
                        tracing::info!(path = %path.display(), rules, "policy reloaded");
                    }
                    Err(error) => {
                        gate.0.metrics.reloaded(false);
                        tracing::error!(path = %path.display(), %error, "the new policy file is invalid; keeping the policy in force");
                    }
                }
                last = bytes;
            }
        })
    }
}
