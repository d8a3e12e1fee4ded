//! Turning events into record payloads and back.

use super::error::DecodeError;

/// Encodes events of type `T` into spill record payloads and decodes them
/// back.
///
/// The spill log stores opaque byte payloads; a codec is how whoever wires
/// the log to the dispatcher turns an event into bytes and back. `decode`
/// receives exactly the bytes `encode` appended for one event (the log's
/// checksum has been verified by then), so a decode error means a codec
/// mismatch (e.g. a type changed between the run that spilled and the one
/// that replays), not disk damage.
///
/// Provided codecs:
///
/// - [`Raw`]: the bytes themselves, for `Vec<u8>`, `Box<[u8]>`, `String`
///   (decoding validates UTF-8) and, with feature `bytes`, `bytes::Bytes`.
/// - `Postcard` (feature `spill-serde`): any `serde` type.
///
/// # Examples
///
/// A codec of your own:
///
/// ```
/// use dispatcher::spill::{Codec, DecodeError};
///
/// struct Le;
/// impl Codec<u64> for Le {
///     fn encode(&self, item: &u64, out: &mut Vec<u8>) {
///         out.extend_from_slice(&item.to_le_bytes());
///     }
///     fn decode(&self, bytes: &[u8]) -> Result<u64, DecodeError> {
///         let b: [u8; 8] = bytes
///             .try_into()
///             .map_err(|_| DecodeError::new(format!("{} bytes, want 8", bytes.len())))?;
///         Ok(u64::from_le_bytes(b))
///     }
/// }
///
/// let mut buf = Vec::new();
/// Le.encode(&42, &mut buf);
/// assert_eq!(Le.decode(&buf)?, 42);
/// assert!(Le.decode(&buf[..3]).is_err());
/// # Ok::<(), DecodeError>(())
/// ```
pub trait Codec<T>: Send + Sync + 'static {
    /// Appends the encoding of `item` to `out` (which may already hold bytes:
    /// append, do not clear).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Codec, Raw};
    /// let mut out = b"kept".to_vec();
    /// Raw.encode(&b"+new".to_vec(), &mut out);
    /// assert_eq!(out, b"kept+new");
    /// ```
    fn encode(&self, item: &T, out: &mut Vec<u8>);

    /// Decodes one event from exactly the bytes one `encode` appended.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are not a valid encoding of a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Codec, Raw};
    /// let s: String = Raw.decode(b"ok")?;
    /// assert_eq!(s, "ok");
    /// assert!(<Raw as Codec<String>>::decode(&Raw, &[0xc0]).is_err());
    /// # Ok::<(), dispatcher::spill::DecodeError>(())
    /// ```
    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError>;
}

/// The identity codec: a record's payload is the event's bytes.
///
/// Implemented for `Vec<u8>`, `Box<[u8]>`, `String` and, with feature
/// `bytes`, `bytes::Bytes`. It is a unit struct, rather than a blanket
/// implementation over a helper trait, so that other codecs (such as
/// `Postcard`) can also be implemented for the same types without
/// conflicting.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Codec, Raw};
///
/// let mut buf = Vec::new();
/// Raw.encode(&String::from("héllo"), &mut buf);
/// assert_eq!(buf, "héllo".as_bytes());
/// let back: String = Raw.decode(&buf)?;
/// assert_eq!(back, "héllo");
/// let bytes: Vec<u8> = Raw.decode(&buf)?;
/// assert_eq!(bytes.len(), 6);
/// # Ok::<(), dispatcher::spill::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&self, item: &Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(item);
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Ok(bytes.to_vec())
    }
}

impl Codec<Box<[u8]>> for Raw {
    fn encode(&self, item: &Box<[u8]>, out: &mut Vec<u8>) {
        out.extend_from_slice(item);
    }
    fn decode(&self, bytes: &[u8]) -> Result<Box<[u8]>, DecodeError> {
        Ok(bytes.into())
    }
}

impl Codec<String> for Raw {
    fn encode(&self, item: &String, out: &mut Vec<u8>) {
        out.extend_from_slice(item.as_bytes());
    }
    fn decode(&self, bytes: &[u8]) -> Result<String, DecodeError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| DecodeError::with_source("the record is not valid UTF-8", e))
    }
}

#[cfg(feature = "bytes")]
impl Codec<bytes::Bytes> for Raw {
    fn encode(&self, item: &bytes::Bytes, out: &mut Vec<u8>) {
        out.extend_from_slice(item);
    }
    fn decode(&self, bytes: &[u8]) -> Result<bytes::Bytes, DecodeError> {
        Ok(bytes::Bytes::copy_from_slice(bytes))
    }
}

/// A codec for any `serde` type, in [postcard]'s format (feature
/// `spill-serde`).
///
/// Why postcard: its wire format is stable and documented (1.0 froze it), it
/// is compact (integers as varints, no field names, no schema or type tags),
/// and it is fast and allocation-free when encoding. The price of "no
/// schema" is that a record can only be decoded as the type it was encoded
/// from: change the event type (reorder or retype fields) and records spilled
/// by the old build fail to decode (or, worse, decode as something else if
/// the shapes happen to agree). Drain or discard a spill directory before
/// deploying an incompatible event type.
///
/// Decoding rejects trailing bytes: a payload must be exactly one value.
///
/// [postcard]: https://docs.rs/postcard
///
/// # Panics
///
/// `encode` panics if the value's `Serialize` implementation fails, which
/// postcard only reports for what it cannot represent: a sequence or map
/// serialized without a known length (`serialize_seq(None)`, as some custom
/// implementations do), or an error raised by the implementation itself.
/// Every derived implementation and every std collection works.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Codec, Postcard};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Reading { sensor: u32, celsius: f32, tag: String }
///
/// let r = Reading { sensor: 7, celsius: 21.5, tag: "roof".into() };
/// let mut buf = Vec::new();
/// Postcard.encode(&r, &mut buf);
/// assert_eq!(buf.len(), 1 + 4 + 1 + 4); // varint 7, f32, varint len, "roof"
/// assert_eq!(Codec::<Reading>::decode(&Postcard, &buf)?, r);
/// # Ok::<(), dispatcher::spill::DecodeError>(())
/// ```
#[cfg(feature = "spill-serde")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

#[cfg(feature = "spill-serde")]
impl<T> Codec<T> for Postcard
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn encode(&self, item: &T, out: &mut Vec<u8>) {
        let start = out.len();
        if let Err(e) = postcard::to_extend(item, Appender(out)) {
            out.truncate(start);
            panic!("spill::Postcard cannot encode this value: {e}");
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (value, rest) = postcard::take_from_bytes::<T>(bytes)
            .map_err(|e| DecodeError::with_source("postcard could not decode the record", e))?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(DecodeError::new(format!(
                "{} trailing bytes after the postcard value",
                rest.len()
            )))
        }
    }
}

/// `Extend<u8>` for a borrowed buffer (postcard's `to_extend` takes the
/// writer by value).
#[cfg(feature = "spill-serde")]
struct Appender<'a>(&'a mut Vec<u8>);

#[cfg(feature = "spill-serde")]
impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trips_every_type() {
        let mut buf = Vec::new();
        Raw.encode(&vec![1u8, 2, 3], &mut buf);
        Raw.encode(&Box::<[u8]>::from(&[4u8][..]), &mut buf);
        assert_eq!(buf, [1, 2, 3, 4], "encode appends");
        let b: Box<[u8]> = Raw.decode(&buf).unwrap();
        assert_eq!(&*b, &[1, 2, 3, 4]);
        let s: Result<String, _> = Raw.decode(&[b'a', 0xc3]);
        assert!(s.is_err(), "a truncated UTF-8 sequence is refused");
        let empty: String = Raw.decode(&[]).unwrap();
        assert!(empty.is_empty());
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn raw_bytes() {
        let mut buf = Vec::new();
        Raw.encode(&bytes::Bytes::from_static(b"xyz"), &mut buf);
        let b: bytes::Bytes = Raw.decode(&buf).unwrap();
        assert_eq!(&b[..], b"xyz");
    }

    #[cfg(feature = "spill-serde")]
    #[test]
    fn postcard_rejects_trailing_and_short() {
        let mut buf = Vec::new();
        Postcard.encode(&(300u32, String::from("ab")), &mut buf);
        let v: (u32, String) = Postcard.decode(&buf).unwrap();
        assert_eq!(v, (300, "ab".into()));
        buf.push(0);
        assert!(Codec::<(u32, String)>::decode(&Postcard, &buf).is_err());
        assert!(Codec::<(u32, String)>::decode(&Postcard, &buf[..2]).is_err());
    }
}
