//! The request context every `Filesystem` method receives.

use crate::backing::BackingFiles;
use crate::channel::Shared;
use fusefs_proto::abi::InHeader;
use fusefs_proto::request::Extensions;
use fusefs_proto::Opcode;

/// Who asked, and whether they still wait: the caller's uid, gid and pid, the request's
/// unique id and opcode, and its interrupted flag.
pub struct Context<'a> {
    pub(crate) header: &'a InHeader,
    pub(crate) extensions: Extensions<'a>,
    pub(crate) shared: &'a Shared,
}

impl<'a> Context<'a> {
    /// The caller's filesystem uid.
    pub fn uid(&self) -> u32 {
        self.header.uid
    }
    /// The caller's filesystem gid.
    pub fn gid(&self) -> u32 {
        self.header.gid
    }
    /// The caller's process (thread group) id; 0 for requests the kernel makes itself.
    pub fn pid(&self) -> u32 {
        self.header.pid
    }
    /// The request's unique id.
    pub fn unique(&self) -> u64 {
        self.header.unique
    }
    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.header.opcode)
    }
    /// Whether the kernel sent INTERRUPT for this request (the caller got a signal). A
    /// filesystem that notices may answer EINTR at once; one that does not simply answers
    /// as usual. The reply objects have the same method, for work finished later on another
    /// thread.
    pub fn is_interrupted(&self) -> bool {
        self.shared.interrupts.is_interrupted(self.header.unique)
    }
    /// Registers backing files for passthrough opens (see [`BackingFiles`]).
    pub fn backing_files(&self) -> &BackingFiles {
        &self.shared.backing
    }
    /// The request's extensions (supplementary groups, security contexts).
    pub fn extensions(&self) -> Extensions<'a> {
        self.extensions
    }
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("unique", &self.header.unique)
            .field("opcode", &self.opcode())
            .field("uid", &self.header.uid)
            .field("gid", &self.header.gid)
            .field("pid", &self.header.pid)
            .finish()
    }
}
