//! One writer for what every office persists. Each office actor hands its
//! batch of changed clients and holdings here once a second; a thread of
//! its own writes every batch waiting and makes them durable with one
//! flush. With a blocking job per office instead, a server of 1,000
//! offices started up to 1,000 jobs and flushes a second (each job may
//! take a thread of the blocking pool), and with 100,000 clients its RSS
//! was 605 MB against 333 MB with one writer (`BENCHMARKS.md`, C2).

use std::sync::Arc;
use std::sync::mpsc;

use branchline_storage::MetaStore;
use branchline_storage::meta_store::MetaError;
use tokio::sync::oneshot;

use crate::server::registry::Dirty;

type Batch = (Dirty, oneshot::Sender<Result<(), WriteError>>);

/// Why a batch was not made durable. One write serves a whole group of
/// batches, so each of them gets its own copy of the error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store refused or failed (the message of its [`MetaError`]).
    #[error("{0}")]
    Store(String),
    /// The writer thread is gone.
    #[error("the metadata writer has stopped")]
    Stopped,
}

/// The writer's handle (cloning shares the thread).
#[derive(Clone, Debug)]
pub struct MetaWriter {
    batches: mpsc::Sender<Batch>,
}

impl MetaWriter {
    /// Starts the writer thread over `store`; it ends when every handle
    /// is gone.
    pub fn start(store: Arc<MetaStore>) -> std::io::Result<Self> {
        let (batches, waiting) = mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("meta-writer".into())
            .spawn(move || {
                while let Ok(first) = waiting.recv() {
                    let mut group = vec![first];
                    group.extend(waiting.try_iter());
                    let result =
                        write_group(&store, &group).map_err(|e| WriteError::Store(e.to_string()));
                    for (_, done) in group {
                        let _ = done.send(result.clone());
                    }
                }
            })?;
        Ok(MetaWriter { batches })
    }

    /// Writes `dirty`; the answer says when it is durable, or why not.
    pub fn write(&self, dirty: Dirty) -> oneshot::Receiver<Result<(), WriteError>> {
        let (done, answer) = oneshot::channel();
        if let Err(mpsc::SendError((_, done))) = self.batches.send((dirty, done)) {
            let _ = done.send(Err(WriteError::Stopped));
        }
        answer
    }
}

/// Writes every batch of `group`, then flushes once.
fn write_group(store: &MetaStore, group: &[Batch]) -> Result<(), MetaError> {
    for (dirty, _) in group {
        for id in &dirty.removed {
            store.remove_client(id)?;
        }
        for client in &dirty.clients {
            store.put_client(client)?;
        }
        for (content, client, have) in &dirty.holdings {
            store.put_holding(content, client, have)?;
        }
    }
    store.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::{ClientRecord, NodeId};

    #[tokio::test]
    async fn batches_written_together_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        let writer = MetaWriter::start(store.clone()).unwrap();
        let client = |n: u8| ClientRecord {
            id: NodeId([n; 16]),
            name: format!("c{n}"),
            addr: "10.0.0.1:1".parse().unwrap(),
            background: "10.0.0.1:2".parse().unwrap(),
            last_seen_ms: 1,
        };
        let answers: Vec<_> = (1..=3)
            .map(|n| {
                writer.write(Dirty {
                    clients: vec![client(n)],
                    ..Dirty::default()
                })
            })
            .collect();
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(store.clients().unwrap().len(), 3);
        let gone = writer.write(Dirty {
            removed: vec![NodeId([2; 16])],
            ..Dirty::default()
        });
        gone.await.unwrap().unwrap();
        assert_eq!(store.clients().unwrap().len(), 2);
    }
}
