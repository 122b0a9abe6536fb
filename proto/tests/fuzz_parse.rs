//! A bounded fuzz test that runs with the normal suite: random and mutated request buffers
//! must parse to a value or an error, never panic, and whatever parses must borrow only from
//! the buffer it came from. The seed is fixed and printed; FUSEFS_FUZZ_SEED and
//! FUSEFS_FUZZ_ITERS override it and the count.
//!
//! Its seeds: one request per opcode and a few with data (below), and the corpus the
//! cargo-fuzz campaigns keep in the repository (proto/fuzz/corpus/parse_request, itself
//! seeded from these by `cargo test -p fusefs-proto --test fuzz_parse -- --ignored`).

use fusefs_proto::build::RequestBuilder;
use fusefs_proto::{Dialect, InitFlags, Opcode, Operation, Request, XattrFlags};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Seeds for mutation: one request per opcode in the table's layout (a zeroed fixed struct
/// and its names), and built requests whose data, counts and extensions are not zero.
fn corpus() -> Vec<Vec<u8>> {
    let mut b = RequestBuilder::new().caller(1000, 100, 42);
    let mut c: Vec<Vec<u8>> = Opcode::ALL
        .iter()
        .map(|op| {
            let mut args = vec![0u8; op.fixed_size()];
            for _ in 0..op.names() {
                args.extend_from_slice(b"name\0");
            }
            b.raw(op.number(), 1, &args)
        })
        .collect();
    c.push(b.write(1, 0, 0, b"data"));
    c.push(b.setxattr(1, "user.x", b"va", XattrFlags::empty()));
    c.push(b.ioctl(1, 0, 1, 0, b"io", 2));
    c.push(b.batch_forget(&[(1, 1), (2, 2)]));
    c.push(b.removemapping(1, &[(0, 1)]));
    c.push(b.init(7, 45, 0, InitFlags::empty()));
    c.push(b.notify_reply(1, 4, 0, b"stored"));
    let mut g = RequestBuilder::new().groups(&[7]);
    c.push(g.create(1, "f", 0o644, 0, 0));
    c
}

/// The campaign's corpus, as kept in the repository.
fn kept_corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_request");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().collect()).unwrap_or_default();
    files.sort_by_key(|e| e.file_name());
    files.iter().filter_map(|e| std::fs::read(e.path()).ok()).collect()
}

/// Write the seeds where the cargo-fuzz campaigns start from (proto/fuzz/corpus/*): run by
/// hand before a campaign, not by the suite.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in ["parse_request", "dispatch"] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in corpus().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
        }
    }
}

fn check(buf: &[u8], d: &Dialect) {
    if let Ok(r) = Request::parse(buf, d) {
        let range = buf.as_ptr_range();
        let inside = |s: &[u8]| {
            s.is_empty() || (range.contains(&s.as_ptr()) && s.as_ptr_range().end <= range.end)
        };
        use std::os::unix::ffi::OsStrExt;
        let slices: Vec<&[u8]> = match r.operation {
            Operation::Lookup(o) => vec![o.name.as_bytes()],
            Operation::Symlink(o) => vec![o.name.as_bytes(), o.target.as_bytes()],
            Operation::Rename(o) => vec![o.name.as_bytes(), o.newname.as_bytes()],
            Operation::Write(o) => vec![o.data],
            Operation::Setxattr(o) => vec![o.name.as_bytes(), o.value],
            Operation::Ioctl(o) => vec![o.in_data],
            Operation::Unknown { body, .. } => vec![body],
            _ => vec![],
        };
        assert!(slices.iter().all(|s| inside(s)), "a parsed slice points outside the buffer");
        if let Operation::Write(w) = r.operation {
            assert!(w.data.len() <= buf.len());
        }
        let _ = r.extensions.iter().count();
        let _ = format!("{:?}", r.operation);
    }
}

#[test]
fn random_and_mutated_requests_never_panic() {
    let seed: u64 =
        std::env::var("FUSEFS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_f05e);
    let iters: u64 =
        std::env::var("FUSEFS_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    eprintln!("fuzz_parse: seed {seed}, {iters} iterations (FUSEFS_FUZZ_SEED / FUSEFS_FUZZ_ITERS)");
    let mut rng = Rng(seed | 1);
    let mut corpus = corpus();
    let kept = kept_corpus();
    eprintln!(
        "fuzz_parse: {} seeds, {} from the campaign's corpus",
        corpus.len() + kept.len(),
        kept.len()
    );
    corpus.extend(kept);
    let dialects = [
        Dialect::default(),
        Dialect { minor: 12, setxattr_ext: true },
        Dialect { minor: 8, setxattr_ext: false },
    ];
    let mut parsed = 0u64;
    for i in 0..iters {
        let d = &dialects[(i % 3) as usize];
        let mut buf = if i % 4 == 0 {
            let len = rng.below(300) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        } else {
            corpus[rng.below(corpus.len() as u64) as usize].clone()
        };
        for _ in 0..=rng.below(4) {
            match rng.below(7) {
                0 if !buf.is_empty() => {
                    let at = rng.below(buf.len() as u64) as usize;
                    buf[at] = rng.next() as u8;
                }
                1 => buf.truncate(rng.below(buf.len() as u64 + 1) as usize),
                2 => buf.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                3 if buf.len() >= 4 => buf[..4].copy_from_slice(&(rng.next() as u32).to_le_bytes()),
                4 if buf.len() >= 8 => {
                    buf[4..8].copy_from_slice(&(rng.below(60) as u32).to_le_bytes())
                }
                5 if buf.len() >= 36 => {
                    buf[32..34].copy_from_slice(&(rng.below(8) as u16).to_le_bytes())
                }
                _ => {}
            }
        }
        // Most mutations keep the length field honest, so parsing goes past the header.
        if buf.len() >= 4 && rng.below(4) != 0 {
            let len = buf.len() as u32;
            buf[..4].copy_from_slice(&len.to_le_bytes());
        }
        check(&buf, d);
        parsed += Request::parse(&buf, d).is_ok() as u64;
    }
    eprintln!("fuzz_parse: {parsed} of {iters} inputs parsed, the rest were errors");
    assert!(parsed > iters / 10, "mutation should keep many inputs valid");
}
