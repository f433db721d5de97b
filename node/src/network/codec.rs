//! The block sync protocol's wire format: SCALE values behind a 4-byte little-endian length, read
//! with a limit that is checked before anything is allocated.
//!
//! Everything here is synchronous apart from the framing itself, so the limits (range checks and
//! fitting a response into its byte budget) are tested without sockets.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use parity_scale_codec::{Compact, CompactLen, Decode, DecodeAll, Encode};

/// The largest encoded [`BlocksRequest`] a node reads. A request is two `u64`s (16 bytes); the
/// slack lets a later version add a field without a new protocol name.
pub const MAX_REQUEST_BYTES: usize = 64;

/// Bytes of the length prefix in front of every request and response.
const LENGTH_PREFIX_BYTES: usize = 4;

/// A request for the items at heights `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct BlocksRequest {
    /// The first height asked for.
    pub from: u64,
    /// The last height asked for (inclusive).
    pub to: u64,
}

/// Why a peer did not answer a [`BlocksRequest`] with items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, thiserror::Error)]
pub enum Refusal {
    /// `from` was above `to`.
    #[error("the range is empty or reversed")]
    InvalidRange,
    /// The range held more heights than the peer serves in one response.
    #[error("the range is larger than the peer's limit of {max} items")]
    RangeTooLarge {
        /// The most items the peer serves in one response.
        max: u64,
    },
    /// The peer has too many requests in flight.
    #[error("the peer is busy")]
    Busy,
    /// The peer's node did not produce an answer (it stopped, or took too long).
    #[error("the peer could not answer")]
    Unavailable,
}

/// The answer to a [`BlocksRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum BlocksResponse {
    /// Items for consecutive heights starting at `from`. There may be fewer than asked for: the
    /// peer does not have them yet, or they did not fit the response's byte limit.
    Items(Vec<Vec<u8>>),
    /// The peer refused the request.
    Refused(Refusal),
}

/// The number of heights in `from..=to`, or the refusal a server gives to that range.
pub fn check_range(from: u64, to: u64, max_items: u64) -> Result<u64, Refusal> {
    let span = to.checked_sub(from).ok_or(Refusal::InvalidRange)?;
    match span.checked_add(1) {
        Some(count) if count <= max_items => Ok(count),
        _ => Err(Refusal::RangeTooLarge { max: max_items }),
    }
}

/// The longest prefix of `items` whose [`BlocksResponse::Items`] encoding fits in `max_bytes`.
///
/// A server trims rather than fails, so the client gets what fits and asks again from where the
/// answer stopped.
pub fn fit_response(mut items: Vec<Vec<u8>>, max_bytes: usize) -> Vec<Vec<u8>> {
    let compact_len = |n: usize| Compact::<u32>::compact_len(&u32::try_from(n).unwrap_or(u32::MAX));
    // The encoding is one byte of enum variant, the vector's compact length, then each item as
    // its compact length and bytes.
    let mut items_bytes = 0usize;
    let mut keep = 0usize;
    for item in &items {
        let count = keep.saturating_add(1);
        items_bytes =
            items_bytes.saturating_add(compact_len(item.len())).saturating_add(item.len());
        let total = items_bytes.saturating_add(1).saturating_add(compact_len(count));
        if total > max_bytes {
            break;
        }
        keep = count;
    }
    items.truncate(keep);
    items
}

/// The request-response codec of the block sync protocol.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    /// The largest encoded response read or written.
    pub max_response_bytes: usize,
}

async fn read_frame<T, V>(io: &mut T, max: usize) -> io::Result<V>
where
    T: AsyncRead + Unpin + Send,
    V: Decode,
{
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = usize::try_from(u32::from_le_bytes(prefix)).unwrap_or(usize::MAX);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max}"),
        ));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    V::decode_all(&mut body.as_slice())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("malformed frame: {e}")))
}

async fn write_frame<T, V>(io: &mut T, value: &V, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    V: Encode,
{
    let body = value.encode();
    let len = u32::try_from(body.len()).ok().filter(|_| body.len() <= max).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is over the limit of {max}", body.len()),
        )
    })?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = BlocksRequest;
    type Response = BlocksResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlocksRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<BlocksResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: BlocksRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: BlocksResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    use super::*;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new("/altan/test/sync/1")
    }

    #[test]
    fn ranges() {
        assert_eq!(check_range(5, 5, 10), Ok(1));
        assert_eq!(check_range(1, 10, 10), Ok(10));
        assert_eq!(check_range(1, 11, 10), Err(Refusal::RangeTooLarge { max: 10 }));
        assert_eq!(check_range(6, 5, 10), Err(Refusal::InvalidRange));
        assert_eq!(
            check_range(0, u64::MAX, u64::MAX),
            Err(Refusal::RangeTooLarge { max: u64::MAX })
        );
    }

    #[test]
    fn fitting_keeps_the_longest_prefix_that_encodes_within_the_limit() {
        let items: Vec<Vec<u8>> = (0u8..10).map(|i| vec![i; 100]).collect();
        let all = BlocksResponse::Items(items.clone()).encode().len();
        assert_eq!(fit_response(items.clone(), all).len(), 10);
        let fitted = fit_response(items.clone(), all - 1);
        assert_eq!(fitted, items[..9].to_vec());
        assert_eq!(BlocksResponse::Items(fitted).encode().len(), all - 102);
        assert_eq!(fit_response(Vec::new(), 0), Vec::<Vec<u8>>::new());
        // 64 items need two bytes of vector length.
        let many: Vec<Vec<u8>> = (0..64).map(|_| Vec::new()).collect();
        let exact = BlocksResponse::Items(many.clone()).encode().len();
        assert_eq!(fit_response(many.clone(), exact).len(), 64);
        assert_eq!(fit_response(many, exact - 1).len(), 63);
        assert!(fit_response(items.clone(), 50).is_empty());
        // An item after one that does not fit is not taken out of order.
        let mixed = vec![vec![0u8; 10], vec![0u8; 1000], vec![0u8; 10]];
        assert_eq!(fit_response(mixed, 200).len(), 1);
    }

    #[test]
    fn frames_round_trip() {
        let mut codec = SyncCodec { max_response_bytes: 1024 };
        let request = BlocksRequest { from: 3, to: 9 };
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&protocol(), &mut wire, request)).unwrap();
        assert_eq!(wire.get_ref().len(), 4 + 16);
        wire.set_position(0);
        assert_eq!(block_on(codec.read_request(&protocol(), &mut wire)).unwrap(), request);

        for response in [
            BlocksResponse::Items(vec![b"one".to_vec(), Vec::new()]),
            BlocksResponse::Refused(Refusal::RangeTooLarge { max: 64 }),
            BlocksResponse::Refused(Refusal::Busy),
        ] {
            let mut wire = Cursor::new(Vec::new());
            block_on(codec.write_response(&protocol(), &mut wire, response.clone())).unwrap();
            wire.set_position(0);
            assert_eq!(block_on(codec.read_response(&protocol(), &mut wire)).unwrap(), response);
        }
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let mut codec = SyncCodec { max_response_bytes: 32 };

        // A length over the limit is refused before the body is read or allocated.
        let mut wire = Cursor::new(u32::MAX.to_le_bytes().to_vec());
        let err = block_on(codec.read_response(&protocol(), &mut wire)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut wire = Cursor::new(Vec::new());
        let big = BlocksResponse::Items(vec![vec![0; 64]]);
        let err = block_on(codec.write_response(&protocol(), &mut wire, big)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(wire.get_ref().is_empty());

        // Trailing bytes after a valid request.
        let mut frame = 17u32.to_le_bytes().to_vec();
        frame.extend(BlocksRequest { from: 1, to: 2 }.encode());
        frame.push(0);
        let err = block_on(codec.read_request(&protocol(), &mut Cursor::new(frame))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        // A truncated body.
        let mut frame = 16u32.to_le_bytes().to_vec();
        frame.extend([0u8; 8]);
        let err = block_on(codec.read_request(&protocol(), &mut Cursor::new(frame))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        // An unknown response variant.
        let frame = [1u8, 0, 0, 0, 7];
        let err = block_on(codec.read_response(&protocol(), &mut Cursor::new(frame))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
