//! Connection timelines: kept only for stored clients, read back as
//! written, and removed with their client (deleted, expired, evicted).

use super::*;
use crate::domain::timeline::{Outcome, Step, StepKind, Timeline};

const WEEK: i64 = 7 * 86_400;

fn step(core: &mut RegistryCore, client_id: &str, step: Step) {
    core.record_step(RecordStep {
        client_id: ClientId::stored(client_id),
        step,
        keep_seconds: WEEK,
    })
    .unwrap();
}

fn read(core: &mut RegistryCore, client_id: &str, now: i64) -> Option<Timeline> {
    core.read_timeline(ReadTimeline {
        client_id: ClientId::stored(client_id),
        now,
        keep_seconds: WEEK,
    })
    .unwrap()
}

#[test]
fn a_stored_clients_steps_read_back_in_order() {
    let (mut core, _) = core(10);
    let r = register(&mut core, AuthMethod::None, T0);
    let id = r.client.client_id.to_string();
    step(
        &mut core,
        &id,
        Step::new(T0, StepKind::Registered, Outcome::Ok),
    );
    let denied = Step::new(T0 + 1, StepKind::Consent, Outcome::Denied)
        .error("access_denied", "the user denied the request");
    step(&mut core, &id, denied);
    core.record_gateway_call(RecordGatewayCall {
        client_id: ClientId::stored(&id),
        now: T0 + 2,
        keep_seconds: WEEK,
    })
    .unwrap();
    let t = read(&mut core, &id, T0 + 3).unwrap();
    let kinds: Vec<_> = t.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Registered,
            StepKind::Consent,
            StepKind::GatewayCall
        ]
    );
    assert_eq!(t.last_error.unwrap().error, "access_denied");
    assert_eq!(t.first_gateway_call_at, Some(T0 + 2));
    // Read later than the kept age: the old steps are left out.
    let later = read(&mut core, &id, T0 + WEEK + 2).unwrap();
    assert_eq!(later.steps.len(), 1);
}

#[test]
fn no_timeline_is_kept_for_a_client_that_is_not_stored() {
    let (mut core, store) = core(10);
    let ghost = "mcp_AAAAAAAAAAAAAAAAAAAAAA";
    step(
        &mut core,
        ghost,
        Step::new(T0, StepKind::Authorize, Outcome::Ok),
    );
    assert!(read(&mut core, ghost, T0).is_none());
    assert_eq!(store.len(Tree::Timelines).unwrap(), 0);
}

#[test]
fn a_timeline_goes_with_its_client_deleted_or_expired() {
    let (mut core, store) = core(10);
    let deleted = register(&mut core, AuthMethod::None, T0);
    let expiring = register(&mut core, AuthMethod::None, T0);
    for r in [&deleted, &expiring] {
        let id = r.client.client_id.to_string();
        step(
            &mut core,
            &id,
            Step::new(T0, StepKind::Registered, Outcome::Ok),
        );
    }
    assert_eq!(store.len(Tree::Timelines).unwrap(), 2);
    core.remove_client(RemoveClient {
        client_id: deleted.client.client_id.clone(),
    })
    .unwrap();
    assert_eq!(store.len(Tree::Timelines).unwrap(), 1);
    let report = core
        .purge_expired(PurgeExpired {
            now: T0 + POLICY.unused_seconds + 1,
            limit: 10,
            after: None,
            scan: usize::MAX,
        })
        .unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(store.len(Tree::Timelines).unwrap(), 0);
}
