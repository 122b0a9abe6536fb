//! Coverage-guided fuzzing of the request parser: any bytes, under each dialect, must parse
//! or give an error, and encoding a reply for whatever parsed must not panic.
#![no_main]

use fusefs_proto::{Dialect, Errno, Operation, OutMessage, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for d in [Dialect::default(), Dialect { minor: 12, setxattr_ext: true }] {
        if let Ok(r) = Request::parse(data, &d) {
            let _ = r.extensions.iter().count();
            if let Operation::BatchForget(b) = r.operation {
                let _ = b.forgets.iter().count();
            }
            let _ = OutMessage::error(r.unique(), Errno::EIO).to_vec();
        }
    }
});
