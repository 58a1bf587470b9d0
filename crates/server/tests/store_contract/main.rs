//! One contract, two engines: every `Store` operation is checked against SQLite (a real
//! file) and PostgreSQL (a fresh schema per test) by the same test function.
//!
//! PostgreSQL tests use the server at `WRISTBAND_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without one they fail in CI (`CI` set,
//! or `WRISTBAND_REQUIRE_POSTGRES=1`) and otherwise say loudly that they did not run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod backchannel;
mod clients;
mod concurrency;
mod corrupt;
mod feed;
mod fixtures;
mod harness;
mod keys;
mod mfa;
mod oidc;
mod revocations;
mod sessions;
mod sqlite_only;
mod throttle;
mod upgrade;
mod users;

/// Generates `sqlite::<name>` and `postgres::<name>` tests from `module::name` functions
/// of type `async fn(Arc<dyn Store>)`.
macro_rules! contract {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::harness::sqlite().await;
                    crate::$module::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!("store_contract::postgres::", stringify!($name));
                    let Some(store) = crate::harness::postgres(test).await else {
                        return;
                    };
                    crate::$module::$name(std::sync::Arc::new(store.clone())).await;
                    store.drop_schema().await.expect("drop the test schema");
                }
            )*
        }
    };
}

contract! {
    backchannel::backchannel_cursor_only_moves_forward,
    backchannel::backchannel_queues_each_token_once,
    backchannel::backchannel_claims_lease_and_finish,
    backchannel::backchannel_concurrent_claims_never_share_a_row,
    backchannel::backchannel_sign_in_sessions_at_a_cutoff,
    users::ping,
    users::users_create_and_read,
    users::users_conflict,
    users::users_case_insensitive,
    users::users_list_byte_order,
    users::users_updates,
    sessions::sessions_create_and_lookup,
    sessions::sessions_rotate,
    sessions::sessions_rotate_revoked_refused,
    sessions::sessions_touch,
    sessions::sessions_revoke,
    sessions::sessions_revoke_recorded_once,
    sessions::sessions_revoke_user_sessions,
    sessions::sessions_user_sessions_order_and_liveness,
    throttle::throttle_counts_and_resets,
    throttle::throttle_clear,
    throttle::throttle_reads_several_keys_at_once,
    throttle::throttle_prune_expired,
    revocations::revocations_feed_cursor_limit_expiry,
    revocations::revocations_ids_survive_prune,
    revocations::revocations_is_revoked,
    revocations::revocations_token_ended,
    revocations::revocations_subject_cutoff_milliseconds,
    revocations::revocations_kid_kind,
    revocations::revocations_prune,
    clients::clients_crud,
    clients::clients_conflict,
    clients::opaque_tokens_put_get,
    keys::keys_insert_and_list,
    keys::keys_one_current_one_next,
    keys::keys_change_in_order,
    keys::keys_change_all_or_nothing,
    keys::keys_change_conflict_rolls_back,
    keys::keys_revoke_records_kid,
    keys::keys_remove_erases_private_key,
    keys::secrets_list_and_reseal,
    keys::secrets_first_writer_wins,
    concurrency::concurrent_rotation_one_winner,
    concurrency::concurrent_failures_counted,
    concurrency::concurrent_revoke_recorded_once,
    concurrency::concurrent_secret_one_winner,
    concurrency::concurrent_revocations_feed_never_skips,
    feed::feed_one_tail_and_a_ring,
    feed::feed_other_writers_reach_the_tail,
    revocations::revocations_last_id,
    clients::clients_oidc_fields_and_update,
    oidc::sessions_by_parent_lists_children,
    oidc::auth_codes_single_use,
    oidc::auth_codes_concurrent_use_one_winner,
    oidc::consents_put_list_remove,
    mfa::mfa_totp_enrolment_and_steps,
    mfa::mfa_totp_concurrent_step_one_winner,
    mfa::mfa_recovery_codes_single_use,
    mfa::mfa_tokens_finish_once,
    mfa::mfa_reset_removes_every_factor,
    mfa::passkeys_add_list_use_remove,
    mfa::webauthn_challenges_single_use_bound_and_expiring,
}

mod postgres_only;
