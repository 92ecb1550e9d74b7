//! The CRI 1.36 list streams (`StreamPodSandboxes`, `StreamContainers`,
//! `StreamImages` and the stats and metrics ones, KEP 5825): the same items
//! as the matching `List…` call, sent in messages of at most `BATCH_BYTES`
//! (and at least one item each), so a node with many pods never meets the
//! gRPC message limit. No items, no message: the stream just ends.

use std::pin::Pin;
use tonic::Status;

pub(super) type ListStream<R> = Pin<Box<dyn futures::Stream<Item = Result<R, Status>> + Send>>;

/// Encoded size of one message's items, well under kubelet's 16 MiB limit.
const BATCH_BYTES: usize = 1 << 20;

pub(super) fn in_batches<T, R>(items: Vec<T>, wrap: fn(Vec<T>) -> R) -> ListStream<R>
where
    T: prost::Message + Send + 'static,
    R: Send + 'static,
{
    let batches = batches(items, BATCH_BYTES);
    Box::pin(futures::stream::iter(
        batches.into_iter().map(move |b| Ok(wrap(b))),
    ))
}

fn batches<T: prost::Message>(items: Vec<T>, limit: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for item in items {
        // An item's size in its message: tag, length and body.
        let n = item.encoded_len() + 8;
        if !batch.is_empty() && size + n > limit {
            out.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += n;
        batch.push(item);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::KeyValue;
    use prost::Message;

    fn kv(n: usize) -> KeyValue {
        KeyValue {
            key: "k".into(),
            value: vec![b'x'; n],
        }
    }

    #[test]
    fn batches_hold_every_item_once_in_order_and_stay_under_the_limit() {
        let items: Vec<_> = (0..100).map(|i| kv(i * 10)).collect();
        let want: Vec<_> = items.clone();
        let got = batches(items, 4096);
        assert!(got.len() > 1);
        for b in &got {
            assert!(!b.is_empty());
            let size: usize = b.iter().map(|i| i.encoded_len() + 8).sum();
            assert!(size <= 4096 || b.len() == 1, "{size}");
        }
        assert_eq!(got.concat(), want);
        assert!(batches(Vec::<KeyValue>::new(), 4096).is_empty());
        // An item larger than the limit goes alone.
        let got = batches(vec![kv(10), kv(10_000), kv(10)], 4096);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    }
}
