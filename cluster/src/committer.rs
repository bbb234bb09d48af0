//! The engine's metadata commits through Raft: [`RaftCommitter`] is the
//! [`MetaCommitter`] a cluster node's `MetaStore` gets, so every change the
//! engine makes becomes a log entry that every node applies in the same
//! order (the state machine is the only writer of the store).

use std::future::Future;
use std::pin::Pin;

use cairn_storage_engine::{EngineError, EngineResult, MetaCommand, MetaCommitter};

use crate::{ClusterRequest, ClusterWriter, WriteError};

/// Commits engine commands with a [`ClusterWriter`] from the engine's
/// blocking threads.
#[derive(Debug)]
pub struct RaftCommitter {
    writer: ClusterWriter,
    runtime: tokio::runtime::Handle,
}

impl RaftCommitter {
    /// `runtime` is the runtime Raft runs on; `commit` blocks on it, so it
    /// must only be called from outside it (the engine's blocking pool).
    pub fn new(writer: ClusterWriter, runtime: tokio::runtime::Handle) -> Self {
        RaftCommitter { writer, runtime }
    }
}

fn engine_error(e: WriteError) -> EngineError {
    match e {
        WriteError::GuardFailed(i) => EngineError::GuardFailed(i),
        WriteError::Timeout(_) => EngineError::Unavailable(e.to_string()),
        WriteError::Refused(why) => EngineError::Unavailable(why),
    }
}

impl MetaCommitter for RaftCommitter {
    fn commit(&self, command: MetaCommand) -> EngineResult<()> {
        let request = ClusterRequest::new(command.encode());
        self.runtime
            .block_on(self.writer.write_and_apply(request))
            .map(|_| ())
            .map_err(engine_error)
    }

    fn read_barrier(&self) -> Pin<Box<dyn Future<Output = EngineResult<()>> + Send + '_>> {
        Box::pin(async move { self.writer.read_barrier().await.map_err(engine_error) })
    }
}
