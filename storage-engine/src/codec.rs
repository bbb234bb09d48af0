//! A tiny explicit binary codec for persisted records.
//!
//! Every record starts with a format version byte written by its `encode`
//! function; decoders match on it and reject unknown versions. Integers are
//! little-endian and fixed width; byte strings are prefixed with their u32
//! length. Decoding never panics: every read is bounds-checked and a short or
//! malformed buffer yields [`CodecError`].

use crate::error::CodecError;

/// Appends fields to a byte vector.
#[derive(Debug, Default)]
pub struct RecordWriter {
    buf: Vec<u8>,
}

impl RecordWriter {
    pub fn with_version(version: u8) -> Self {
        let mut w = RecordWriter {
            buf: Vec::with_capacity(64),
        };
        w.u8(version);
        w
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A length-prefixed byte string. Lengths above u32::MAX cannot occur for
    /// metadata (values are bounded far below that by the S3 layer).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        debug_assert!(u32::try_from(v.len()).is_ok());
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => {
                self.u8(1);
                self.str(s)
            }
            None => self.u8(0),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a byte slice, failing cleanly on truncation.
#[derive(Debug)]
pub struct RecordReader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> RecordReader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        RecordReader { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, CodecError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(a))
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    pub fn i64(&mut self) -> Result<i64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }

    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn string(&mut self) -> Result<String, CodecError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError::InvalidUtf8(self.what))
    }

    pub fn opt_string(&mut self) -> Result<Option<String>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(CodecError::Invalid(self.what)),
        }
    }

    /// A count read from the record, bounded so that a corrupt count cannot
    /// make the decoder allocate unbounded memory: every element needs at
    /// least `min_element_bytes` of remaining input.
    pub fn count(&mut self, min_element_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_element_bytes.max(1)) > self.buf.len() {
            return Err(CodecError::Truncated(self.what));
        }
        Ok(n)
    }

    /// Decoders call this last so trailing garbage is noticed.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes(self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_fields() {
        let mut w = RecordWriter::with_version(3);
        w.u16(7).u32(8).u64(9).i64(-5).str("héllo").opt_str(None);
        w.opt_str(Some("x")).fixed(&[1, 2, 3]);
        let buf = w.finish();
        let mut r = RecordReader::new(&buf, "test");
        assert_eq!(r.u8().unwrap(), 3);
        assert_eq!(r.u16().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 8);
        assert_eq!(r.u64().unwrap(), 9);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.opt_string().unwrap(), None);
        assert_eq!(r.opt_string().unwrap().as_deref(), Some("x"));
        assert_eq!(r.fixed::<3>().unwrap(), [1, 2, 3]);
        r.finish().unwrap();
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let mut w = RecordWriter::with_version(1);
        w.str("abcdef");
        let buf = w.finish();
        for cut in 0..buf.len() {
            let mut r = RecordReader::new(&buf[..cut], "test");
            let res = r.u8().and_then(|_| r.string());
            assert!(res.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn huge_count_is_rejected() {
        let mut w = RecordWriter::default();
        w.u32(u32::MAX);
        let buf = w.finish();
        let mut r = RecordReader::new(&buf, "test");
        assert!(r.count(1).is_err());
    }
}
