//! One test per guest, by the guest's name: `foreach_guest!` in `main.rs`
//! fails to compile when a guest in `guests/` is missing here.

pub(crate) use crate::calls::one_request_through_three_services_and_an_outside_server_is_one_trace as chain;
pub(crate) use crate::compat::a_raw_wasi_bindings_component_runs_unmodified as raw_proxy;
pub(crate) use crate::compat::a_wasi_p3_service_component_runs as hello_p3;
pub(crate) use crate::isolation::a_failing_guest_never_affects_another_services_requests as hostile;
pub(crate) use crate::observability::a_client_request_id_is_kept_and_seen_by_the_guest as echo;
pub(crate) use crate::routing::prefixes_match_at_segment_boundaries_and_the_longest_wins as hello;
pub(crate) use crate::sandbox::the_guest_sees_its_declared_env_and_nothing_of_the_hosts as sandbox;
pub(crate) use crate::sdk::the_outbound_guest_calls_its_allowed_upstream_and_reports_a_denied_one as outbound;
pub(crate) use crate::sdk::the_raw_bindings_router_answers_exactly_like_the_sdk_router as raw_router;
pub(crate) use crate::sdk::the_router_demo_serves_its_json_api_with_path_params as router_demo;
pub(crate) use crate::state::a_guest_on_the_older_keyvalue_draft_uses_the_same_stores as kv_draft;
pub(crate) use crate::state::a_spin_sdk_5_component_keeps_state_and_reads_variables_unmodified as spin_kv;
pub(crate) use crate::state::a_spin_sdk_7_wasi_0_3_component_keeps_state_and_reads_variables_unmodified as spin_kv3;
pub(crate) use crate::state::replicas_behind_haproxy_count_and_swap_atomically_on_one_redis as kv_counter;
