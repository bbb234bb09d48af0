//! Storage tests: openraft's own suite, and apply/snapshot on real metadata.

use std::sync::Arc;

use cairn_storage_engine::{KeyRange, MetaCf, MetaCommand, MetaGuard, MetaOp, MetaStore, System};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};

use crate::{
    ClusterRequest, ClusterResponse, LogStore, MetaStateMachine, StorageError, TypeConfig,
};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, MetaStateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, MetaStateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write_logs(&e))?;
        let log = LogStore::open(&dir.path().join("raft"))?;
        let meta = MetaStore::open(&dir.path().join("meta"))
            .map_err(|e| openraft::StorageIOError::write_state_machine(&e))?;
        let sm = MetaStateMachine::open(Arc::new(meta), &dir.path().join("snapshots"))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn put(cf: MetaCf, key: &str, value: &str) -> MetaOp {
    MetaOp::Put {
        cf,
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn normal(index: u64, ops: Vec<MetaOp>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(ClusterRequest::new(
            MetaCommand {
                guards: vec![],
                ops,
            }
            .encode(),
        )),
    }
}

/// The value of `key` in the objects column family, if any.
fn object_value(store: &MetaStore, key: &[u8]) -> Option<Vec<u8>> {
    store
        .export()
        .unwrap()
        .ops
        .into_iter()
        .find_map(|op| match op {
            MetaOp::Put {
                cf: MetaCf::Objects,
                key: k,
                value,
            } if k == key => Some(value),
            _ => None,
        })
}

/// Replicated data only (the state machine's own keys differ by design
/// between a builder and an installer until both applied the same ids).
fn data(store: &MetaStore) -> Vec<MetaOp> {
    store
        .export()
        .unwrap()
        .ops
        .into_iter()
        .filter(|op| !matches!(op, MetaOp::Put { cf: MetaCf::System, key, .. } if key.starts_with(b"raft-")))
        .collect()
}

#[tokio::test]
async fn commands_apply_and_travel_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(&dir.path().join("a")).unwrap());
    let mut sm = MetaStateMachine::open(store.clone(), &dir.path().join("snaps")).unwrap();
    let responses = sm
        .apply(vec![
            normal(
                1,
                vec![
                    put(MetaCf::Buckets, "b1", "x"),
                    put(MetaCf::Objects, "k", "v"),
                ],
            ),
            normal(
                2,
                vec![MetaOp::Delete {
                    cf: MetaCf::Objects,
                    key: b"k".to_vec(),
                }],
            ),
            Entry {
                log_id: log_id(1, 3),
                payload: EntryPayload::Normal(ClusterRequest::new(vec![9, 9])),
            },
            normal(4, vec![put(MetaCf::System, "access-key/a", "sealed")]),
        ])
        .await
        .unwrap();
    assert_eq!(responses.len(), 4);
    assert!(
        matches!(responses[2], ClusterResponse::Rejected(_)),
        "{responses:?}"
    );
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 4)));
    assert_eq!(
        store.get::<System>("access-key/a").unwrap().as_deref(),
        Some(&b"sealed"[..])
    );

    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 4)));

    // A second node that had other data installs it and holds the same.
    let other = Arc::new(MetaStore::open(&dir.path().join("b")).unwrap());
    other
        .apply(
            &MetaCommand {
                guards: vec![],
                ops: vec![put(MetaCf::Objects, "stale", "gone")],
            },
            false,
        )
        .unwrap();
    let mut sm2 = MetaStateMachine::open(other.clone(), &dir.path().join("snaps2")).unwrap();
    sm2.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert_eq!(data(&other), data(&store));
    let (applied2, _) = sm2.applied_state().await.unwrap();
    assert_eq!(applied2, Some(log_id(1, 4)));
    let current = sm2.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);
}

#[tokio::test]
async fn the_log_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = LogStore::open(dir.path()).unwrap();
        log.save_vote(&openraft::Vote::new(3, 2)).await.unwrap();
        log.save_committed(Some(log_id(1, 1))).await.unwrap();
    }
    let mut log = LogStore::open(dir.path()).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(openraft::Vote::new(3, 2))
    );
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 1)));
}

/// A guarded command applies only if the state it was built on is still
/// there; a failed guard writes nothing but still advances the position.
#[tokio::test]
async fn guards_decide_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path()).unwrap());
    let mut sm = MetaStateMachine::open(store.clone(), &dir.path().join("snaps")).unwrap();
    let guarded = |index: u64, guard: MetaGuard, value: &str| Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(ClusterRequest::new(
            MetaCommand {
                guards: vec![guard],
                ops: vec![put(MetaCf::Objects, "k", value)],
            }
            .encode(),
        )),
    };
    // Two nodes both saw "k" absent and propose; the log orders them.
    let absent = MetaGuard::value_is(MetaCf::Objects, b"k", None);
    let responses = sm
        .apply(vec![
            guarded(1, absent.clone(), "first"),
            guarded(2, absent, "second"),
            guarded(
                3,
                MetaGuard::value_is(MetaCf::Objects, b"k", Some(b"first")),
                "third",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        responses,
        vec![
            ClusterResponse::Applied,
            ClusterResponse::GuardFailed(0),
            ClusterResponse::Applied
        ]
    );
    assert_eq!(object_value(&store, b"k").as_deref(), Some(&b"third"[..]));
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
}

/// A request committed twice (a retry after a lost answer, a replayed
/// message) is applied once and answers the same; ids are forgotten after
/// the window, by the requests' own clock.
#[tokio::test]
async fn a_request_id_is_applied_once_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path()).unwrap());
    let mut sm = MetaStateMachine::open(store.clone(), &dir.path().join("snaps")).unwrap();
    let request = |at_ms: u64, value: &str| {
        let mut r = ClusterRequest::new(
            MetaCommand {
                guards: vec![],
                ops: vec![put(MetaCf::Objects, "k", value)],
            }
            .encode(),
        );
        r.at_ms = at_ms;
        r
    };
    let entry = |index: u64, r: &ClusterRequest| Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(r.clone()),
    };
    let value = |store: &MetaStore| object_value(store, b"k");
    let t0 = 1_000_000;
    let first = request(t0, "first");
    let second = request(t0 + 1, "second");
    let responses = sm
        .apply(vec![entry(1, &first), entry(2, &second), entry(3, &first)])
        .await
        .unwrap();
    assert_eq!(responses, vec![ClusterResponse::Applied; 3]);
    assert_eq!(
        value(&store).as_deref(),
        Some(&b"second"[..]),
        "the replay changed nothing"
    );

    // Entry 256 trims ids older than its own time minus the window.
    let late = request(t0 + crate::DEDUP_WINDOW_MS + 10, "late");
    sm.apply(vec![entry(256, &late)]).await.unwrap();
    sm.apply(vec![entry(257, &first)]).await.unwrap();
    assert_eq!(
        value(&store).as_deref(),
        Some(&b"first"[..]),
        "forgotten, so applied again"
    );
    let remembered = store
        .keys::<System>(KeyRange::between(b"raft-req/", b"raft-req0"), 100)
        .unwrap()
        .len();
    assert_eq!(remembered, 2, "late and the re-applied first");
}
