//! Crash safety: a real server under 32 concurrent PUTs (small and large
//! objects, new keys and overwrites) is killed with SIGKILL at random
//! moments, restarted, and checked — for `CRASH_CYCLES` cycles:
//!
//! * every acknowledged PUT reads back byte-exact (unless a later PUT of the
//!   same key, acknowledged or not, replaced it);
//! * a PUT cut by the kill is either absent or complete — never partial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;

const CRASH_CYCLES: u64 = 20;
const WORKERS: u64 = 32;
const BUCKET: &str = "crash";

/// Contents a key may legitimately hold after a crash.
#[derive(Default)]
struct KeyState {
    /// Last acknowledged content (`None`: never acknowledged).
    acked: Option<Arc<Vec<u8>>>,
    /// Contents attempted after `acked` whose outcome is unknown.
    pending: Vec<Arc<Vec<u8>>>,
}

type Oracle = Arc<Mutex<HashMap<String, KeyState>>>;
type Body = Arc<Vec<u8>>;

fn body_for(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(100) {
        0..=69 => 1 + rng.below(8 * KIB as u64) as usize,
        70..=94 => 64 * KIB + rng.below(MIB as u64) as usize,
        _ => 3 * MIB + rng.below(3 * MIB as u64) as usize,
    };
    rng.bytes(len)
}

async fn worker(c: aws_sdk_s3::Client, oracle: Oracle, cycle: u64, w: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    for n in 0.. {
        // A third of the PUTs overwrite this worker's hot key.
        let key = if rng.below(3) == 0 {
            format!("hot/{w}")
        } else {
            format!("c{cycle}/w{w}/{n}")
        };
        let body = Arc::new(body_for(&mut rng));
        oracle
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .pending
            .push(body.clone());
        let res = c
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(body.as_ref().clone()))
            .send()
            .await;
        if res.is_err() {
            return; // the server died (or is dying): outcome unknown
        }
        let mut o = oracle.lock().unwrap();
        let st = o.get_mut(&key).unwrap();
        // Acknowledged: this content, or a later pending one, is current.
        let pos = st
            .pending
            .iter()
            .position(|p| Arc::ptr_eq(p, &body))
            .unwrap();
        st.pending.drain(..=pos);
        st.acked = Some(body);
    }
}

#[test]
fn acknowledged_puts_survive_sigkill_under_concurrent_load() {
    run(async {
        let seed = test_seed("crash");
        let mut rng = Rng::new(seed);
        let mut server = TestServer::start();
        create_bucket(&sdk_client(&server), BUCKET).await;
        let oracle: Oracle = Arc::default();
        let mut acked_total = 0usize;
        for cycle in 0..CRASH_CYCLES {
            let c = sdk_client(&server);
            let tasks: Vec<_> = (0..WORKERS)
                .map(|w| tokio::spawn(worker(c.clone(), oracle.clone(), cycle, w, rng.next_u64())))
                .collect();
            let kill_after = Duration::from_millis(150 + rng.below(900));
            tokio::time::sleep(kill_after).await;
            server.kill();
            for t in tasks {
                t.await.unwrap();
            }
            server.start_again();

            let c = sdk_client(&server);
            let snapshot: Vec<(String, Option<Body>, Vec<Body>)> = oracle
                .lock()
                .unwrap()
                .iter()
                .map(|(k, s)| (k.clone(), s.acked.clone(), s.pending.clone()))
                .collect();
            acked_total = snapshot.iter().filter(|(_, a, _)| a.is_some()).count();
            for (key, acked, pending) in &snapshot {
                // Check this cycle's keys, the hot keys, and a sample of older ones.
                let recent = key.starts_with(&format!("c{cycle}/")) || key.starts_with("hot/");
                if !recent && rng.below(10) != 0 {
                    continue;
                }
                let got = if object_exists(&c, BUCKET, key).await {
                    Some(get_bytes(&c, BUCKET, key).await)
                } else {
                    None
                };
                let ok = match &got {
                    None => acked.is_none(),
                    Some(g) => {
                        acked.as_ref().is_some_and(|a| a.as_slice() == g.as_slice())
                            || pending.iter().any(|p| p.as_slice() == g.as_slice())
                    }
                };
                assert!(
                    ok,
                    "cycle {cycle} (killed after {kill_after:?}): {key} holds {} ({} acked bytes, {} pending versions) — lost or partial",
                    got.as_ref()
                        .map_or("nothing".to_owned(), |g| format!("{} bytes", g.len())),
                    acked.as_ref().map_or(0, |a| a.len()),
                    pending.len()
                );
                // What is there now is the truth for the next cycles.
                let mut o = oracle.lock().unwrap();
                let st = o.get_mut(key).unwrap();
                st.pending.clear();
                st.acked = got.map(Arc::new);
            }
        }
        assert!(
            acked_total > 100,
            "too little load to mean anything: {acked_total} keys acknowledged"
        );
        eprintln!("crash: {CRASH_CYCLES} SIGKILL cycles, {acked_total} keys acknowledged");
    });
}
