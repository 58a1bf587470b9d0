//! `loadgen socket-floor`: the least any fan-out can cost per subscriber, the baseline for
//! the revocation stream's CPU per revocation.
//!
//! One thread writes each record, already framed, to N loopback TCP connections with
//! blocking `write` calls, one after the other: no HTTP, no async runtime, no task to wake.
//! A child process (`loadgen socket-sink`) holds the other ends and drains them, as the
//! subscriber simulator does. The writer's own CPU (user and system, from
//! `/proc/self/stat`) over `rate × window` records is the floor that a server writing one
//! event per subscriber per record cannot go under on this machine. On loopback it
//! includes the receiving side's TCP work, which the kernel runs in the writer's context,
//! as it does for the auth service.
//!
//! Prints one JSON line.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Args;
use serde_json::json;

use crate::subscribers::cpu_ticks;

/// `socket-floor` arguments.
#[derive(Args, Clone, Debug)]
pub(crate) struct FloorArgs {
    /// Connections to write each record to.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Records per second.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Seconds of writing.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// Bytes per record (the stream's events are about 112).
    #[arg(long, default_value_t = 112)]
    bytes: usize,
    /// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
}

/// Runs the writer (on this thread, blocking) against a sink in a child process.
// A benchmark's writer paces itself on the wall clock (the ban on sleeping is for tests).
#[allow(clippy::disallowed_methods)]
pub(crate) fn run(a: &FloorArgs, label: &str) -> Result<()> {
    ensure!(
        a.rate > 0 && a.subscribers > 0,
        "--rate and --subscribers must be positive"
    );
    let exe = std::env::current_exe()?;
    let mut sink = Command::new(exe)
        .arg("socket-sink")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the sink")?;
    let mut port = String::new();
    BufReader::new(sink.stdout.take().context("sink stdout")?).read_line(&mut port)?;
    let addr = format!("127.0.0.1:{}", port.trim());
    let mut socks = Vec::with_capacity(a.subscribers);
    for _ in 0..a.subscribers {
        let s = TcpStream::connect(&addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        socks.push(s);
    }
    let record = vec![b'x'; a.bytes];
    std::thread::sleep(Duration::from_secs(1));
    let records = u64::from(a.rate) * a.window;
    let period = Duration::from_secs(1) / a.rate;
    let (u0, s0) = cpu_ticks("self")?;
    let start = Instant::now();
    for i in 0..records {
        let due = start + period * u32::try_from(i)?;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for s in &mut socks {
            s.write_all(&record)?;
        }
    }
    let (u1, s1) = cpu_ticks("self")?;
    drop(socks);
    let _ = sink.kill();
    let _ = sink.wait();
    let ms = |ticks: u64| ticks as f64 * 1000.0 / a.clk_tck as f64 / records as f64;
    let total = ms((u1 - u0) + (s1 - s0));
    println!(
        "{}",
        json!({
            "label": label,
            "scenario": "socket-floor",
            "subscribers": a.subscribers,
            "rate": a.rate,
            "records": records,
            "bytes": a.bytes,
            "cpu_ms_per_record": (total * 100.0).round() / 100.0,
            "sys_cpu_ms_per_record": (ms(s1 - s0) * 100.0).round() / 100.0,
            "cpu_us_per_subscriber": (total * 1000.0 / a.subscribers as f64 * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

/// `socket-sink`: accepts loopback connections and drains them, printing its port first.
pub(crate) async fn sink() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    loop {
        let (conn, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while conn.readable().await.is_ok() {
                match conn.try_read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break,
                    _ => {}
                }
            }
        });
    }
}
