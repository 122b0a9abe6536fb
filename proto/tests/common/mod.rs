//! Byte builders shared by the golden and fuzz tests.
#![allow(dead_code)]

/// A little-endian byte builder, independent of the ABI structs under test.
#[derive(Default, Clone)]
pub struct B(pub Vec<u8>);
impl B {
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn name(self, s: &str) -> Self {
        self.bytes(s.as_bytes()).bytes(&[0])
    }
    pub fn zeros(self, n: usize) -> Self {
        self.bytes(&vec![0; n])
    }
}

pub const UNIQUE: u64 = 0x1234;
pub const NODE: u64 = 7;

/// A whole request: `fuse_in_header` (len, opcode, unique, nodeid, uid 1000, gid 100,
/// pid 42, total_extlen, padding) then `body` then `ext`.
pub fn request(opcode: u32, body: B, ext: &[u8]) -> Vec<u8> {
    let len = 40 + body.0.len() + ext.len();
    B::default()
        .u32(len as u32)
        .u32(opcode)
        .u64(UNIQUE)
        .u64(NODE)
        .u32(1000)
        .u32(100)
        .u32(42)
        .u16((ext.len() / 8) as u16)
        .u16(0)
        .bytes(&body.0)
        .bytes(ext)
        .0
}
