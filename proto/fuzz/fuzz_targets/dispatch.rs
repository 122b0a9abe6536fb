//! Coverage-guided fuzzing of dispatch: any bytes, handed to a MemFs behind the testing
//! harness as the kernel would hand a request, must be answered or refused, never panic the
//! session or the filesystem. The input is split into requests by their length fields
//! (`Harness::request_stream`), so one input is a sequence (a MKDIR, then a LOOKUP in it).
#![no_main]

use fusefs::memfs::MemFs;
use fusefs::testing::Harness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let h = Harness::new(MemFs::default());
    h.request_stream(data);
});
