//! The dispatch fuzz target's corpus (proto/fuzz/corpus/dispatch, kept by the cargo-fuzz
//! campaigns) replayed and mutated in the normal suite: every input, split into requests by
//! their length fields and handed to MemFs behind the testing harness, is answered or
//! refused without a panic. Seed fixed and printed; FUSEFS_FUZZ_SEED and FUSEFS_FUZZ_ITERS
//! override it and the count of mutated inputs.

use fusefs::memfs::MemFs;
use fusefs::testing::Harness;

/// Feed `data` to a fresh MemFs as the fuzz target does.
fn replay(data: &[u8]) {
    Harness::new(MemFs::default()).request_stream(data);
}

#[test]
fn the_dispatch_corpus_and_its_mutations_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/fuzz/corpus/dispatch");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("the dispatch corpus is kept in the repository")
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    corpus.sort();
    assert!(corpus.len() > 100, "the corpus holds the campaign's inputs ({})", corpus.len());
    for input in &corpus {
        replay(input);
    }
    let seed: u64 =
        std::env::var("FUSEFS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xd15_7a7c);
    let iters: u64 =
        std::env::var("FUSEFS_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    eprintln!("fuzz_dispatch: {} inputs, then seed {seed}, {iters} mutations", corpus.len());
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..iters {
        let mut buf = corpus[(next() % corpus.len() as u64) as usize].clone();
        for _ in 0..=next() % 4 {
            if buf.is_empty() {
                break;
            }
            let at = (next() % buf.len() as u64) as usize;
            match next() % 3 {
                0 => buf[at] = next() as u8,
                1 => buf.truncate(at),
                _ => buf.insert(at, next() as u8),
            }
        }
        replay(&buf);
    }
}
