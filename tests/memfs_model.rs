//! Model-based test of MemFs: random sequences of operations (create, write, truncate,
//! rename with its flags, link, unlink, mkdir, rmdir, chmod, xattrs) applied to MemFs and to
//! a simple reference model, and compared after every step: the same result (errno
//! included), and the same tree (names, types, link counts, modes, sizes, contents, xattrs).
//!
//! Bounded to about a second in `cargo test` (256 sequences of up to 40 operations); a
//! longer run: `PROPTEST_CASES=100000 cargo test --release --test memfs_model`. A failure is shrunk to
//! a minimal sequence and saved by proptest under tests/memfs_model.proptest-regressions.

use fusefs::memfs::{Caller, MemFs, MemFsOptions};
use fusefs::{Errno, FileType, RenameFlags, XattrFlags};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const XATTRS: [&str; 2] = ["user.x", "user.y"];
const ROOT: u64 = 1;
const CALLER: Caller = Caller { uid: 0, gid: 0 };

#[derive(Clone, Debug)]
enum Op {
    Create { dir: usize, name: usize, mode: u32 },
    Mkdir { dir: usize, name: usize },
    Write { file: usize, offset: u64, len: usize, byte: u8 },
    Truncate { file: usize, size: u64 },
    Rename { dir: usize, name: usize, newdir: usize, newname: usize, how: u8 },
    Link { file: usize, dir: usize, name: usize },
    Unlink { dir: usize, name: usize },
    Rmdir { dir: usize, name: usize },
    Chmod { node: usize, mode: u32 },
    SetXattr { node: usize, name: usize, value: Vec<u8> },
    RemoveXattr { node: usize, name: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let sel = 0usize..8;
    let name = 0usize..NAMES.len();
    prop_oneof![
        (sel.clone(), name.clone(), 0u32..0o1000).prop_map(|(dir, name, mode)| Op::Create {
            dir,
            name,
            mode
        }),
        (sel.clone(), name.clone()).prop_map(|(dir, name)| Op::Mkdir { dir, name }),
        (sel.clone(), 0u64..20_000, 0usize..5000, any::<u8>())
            .prop_map(|(file, offset, len, byte)| Op::Write { file, offset, len, byte }),
        (sel.clone(), 0u64..30_000).prop_map(|(file, size)| Op::Truncate { file, size }),
        (sel.clone(), name.clone(), sel.clone(), name.clone(), 0u8..3).prop_map(
            |(dir, name, newdir, newname, how)| Op::Rename { dir, name, newdir, newname, how }
        ),
        (sel.clone(), sel.clone(), name.clone()).prop_map(|(file, dir, name)| Op::Link {
            file,
            dir,
            name
        }),
        (sel.clone(), name.clone()).prop_map(|(dir, name)| Op::Unlink { dir, name }),
        (sel.clone(), name.clone()).prop_map(|(dir, name)| Op::Rmdir { dir, name }),
        (sel.clone(), 0u32..0o1000).prop_map(|(node, mode)| Op::Chmod { node, mode }),
        (sel.clone(), 0usize..XATTRS.len(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(node, name, value)| Op::SetXattr { node, name, value }),
        (sel, 0usize..XATTRS.len()).prop_map(|(node, name)| Op::RemoveXattr { node, name }),
    ]
}

/// A node of the model; ids are MemFs's inode numbers.
#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    mode: u32,
    xattrs: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir { entries: BTreeMap<String, u64>, parent: u64 },
}

struct Model {
    nodes: BTreeMap<u64, Node>,
}

impl Model {
    fn new() -> Model {
        let root = Node {
            kind: Kind::Dir { entries: BTreeMap::new(), parent: ROOT },
            mode: 0o755,
            xattrs: BTreeMap::new(),
        };
        Model { nodes: BTreeMap::from([(ROOT, root)]) }
    }

    fn pick(&self, sel: usize, want: impl Fn(&Node) -> bool) -> Option<u64> {
        let ids: Vec<u64> = self.nodes.iter().filter(|(_, n)| want(n)).map(|(&i, _)| i).collect();
        (!ids.is_empty()).then(|| ids[sel % ids.len()])
    }
    fn dir(&self, sel: usize) -> u64 {
        self.pick(sel, |n| matches!(n.kind, Kind::Dir { .. })).expect("the root is a directory")
    }
    fn file(&self, sel: usize) -> Option<u64> {
        self.pick(sel, |n| matches!(n.kind, Kind::File(_)))
    }
    fn entries(&self, dir: u64) -> &BTreeMap<String, u64> {
        match &self.nodes[&dir].kind {
            Kind::Dir { entries, .. } => entries,
            Kind::File(_) => unreachable!("not a directory"),
        }
    }
    fn entries_mut(&mut self, dir: u64) -> &mut BTreeMap<String, u64> {
        match &mut self.nodes.get_mut(&dir).unwrap().kind {
            Kind::Dir { entries, .. } => entries,
            Kind::File(_) => unreachable!("not a directory"),
        }
    }
    fn get(&self, dir: u64, name: &str) -> Option<u64> {
        self.entries(dir).get(name).copied()
    }
    fn is_dir(&self, id: u64) -> bool {
        matches!(self.nodes[&id].kind, Kind::Dir { .. })
    }
    fn set_parent(&mut self, id: u64, p: u64) {
        if let Kind::Dir { parent, .. } = &mut self.nodes.get_mut(&id).unwrap().kind {
            *parent = p;
        }
    }
    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: u64, mut b: u64) -> bool {
        loop {
            if a == b {
                return true;
            }
            let Kind::Dir { parent, .. } = self.nodes[&b].kind else { return false };
            if b == ROOT {
                return false;
            }
            b = parent;
        }
    }
    /// Names pointing at `id` anywhere.
    fn links(&self, id: u64) -> u32 {
        self.nodes
            .values()
            .filter_map(|n| match &n.kind {
                Kind::Dir { entries, .. } => Some(entries.values().filter(|&&e| e == id).count()),
                Kind::File(_) => None,
            })
            .sum::<usize>() as u32
    }
    /// A file that lost its last name is gone (MemFs holds no lookup on it: the test forgets
    /// every lookup at once).
    fn drop_if_unlinked(&mut self, id: u64) {
        if !self.is_dir(id) && self.links(id) == 0 {
            self.nodes.remove(&id);
        }
    }
    fn remove_subtree(&mut self, id: u64) {
        self.nodes.remove(&id);
    }
}

/// Apply `op` to both; their results must agree.
fn step(fs: &MemFs, m: &mut Model, op: &Op) -> Result<(), String> {
    let os = |i: usize| OsStr::new(NAMES[i]);
    let (got, want): (Result<(), Errno>, Result<(), Errno>) = match *op {
        Op::Create { dir, name, mode } => {
            let d = m.dir(dir);
            let r =
                fs.create(d, os(name), libc::S_IFREG | mode, libc::O_EXCL | libc::O_RDWR, CALLER);
            let want = if m.get(d, NAMES[name]).is_some() { Err(Errno::EEXIST) } else { Ok(()) };
            if let Ok(a) = &r {
                fs.forget(a.ino, 1);
                if want.is_ok() {
                    let n = Node { kind: Kind::File(Vec::new()), mode, xattrs: BTreeMap::new() };
                    m.nodes.insert(a.ino, n);
                    m.entries_mut(d).insert(NAMES[name].into(), a.ino);
                }
            }
            (r.map(|_| ()), want)
        }
        Op::Mkdir { dir, name } => {
            let d = m.dir(dir);
            let r = fs.mkdir(d, os(name), 0o755, CALLER);
            let want = if m.get(d, NAMES[name]).is_some() { Err(Errno::EEXIST) } else { Ok(()) };
            if let Ok(a) = &r {
                fs.forget(a.ino, 1);
                if want.is_ok() {
                    let kind = Kind::Dir { entries: BTreeMap::new(), parent: d };
                    m.nodes.insert(a.ino, Node { kind, mode: 0o755, xattrs: BTreeMap::new() });
                    m.entries_mut(d).insert(NAMES[name].into(), a.ino);
                }
            }
            (r.map(|_| ()), want)
        }
        Op::Write { file, offset, len, byte } => {
            let Some(f) = m.file(file) else { return Ok(()) };
            let data = vec![byte; len];
            let r = fs.write(f, offset, &data, false).map(|n| assert_eq!(n as usize, len));
            if let Kind::File(content) = &mut m.nodes.get_mut(&f).unwrap().kind {
                // A write of nothing changes nothing, not even the size.
                let end = offset as usize + len;
                if len > 0 {
                    if content.len() < end {
                        content.resize(end, 0);
                    }
                    content[offset as usize..end].copy_from_slice(&data);
                }
            }
            (r, Ok(()))
        }
        Op::Truncate { file, size } => {
            let Some(f) = m.file(file) else { return Ok(()) };
            let mut set = fusefs::op::SetAttr::default();
            set.size = Some(size);
            let r = fs.setattr(f, &set).map(|_| ());
            if let Kind::File(content) = &mut m.nodes.get_mut(&f).unwrap().kind {
                content.resize(size as usize, 0);
            }
            (r, Ok(()))
        }
        Op::Rename { dir, name, newdir, newname, how } => {
            let (d, nd) = (m.dir(dir), m.dir(newdir));
            let flags = match how {
                0 => RenameFlags::empty(),
                1 => RenameFlags::NOREPLACE,
                _ => RenameFlags::EXCHANGE,
            };
            let r = fs.rename(d, os(name), nd, os(newname), flags);
            (r, model_rename(m, d, NAMES[name], nd, NAMES[newname], how))
        }
        Op::Link { file, dir, name } => {
            let Some(f) = m.file(file) else { return Ok(()) };
            let d = m.dir(dir);
            let r = fs.link(f, d, os(name));
            if let Ok(a) = &r {
                fs.forget(a.ino, 1);
            }
            let want = if m.get(d, NAMES[name]).is_some() { Err(Errno::EEXIST) } else { Ok(()) };
            if want.is_ok() {
                m.entries_mut(d).insert(NAMES[name].into(), f);
            }
            (r.map(|_| ()), want)
        }
        Op::Unlink { dir, name } => {
            let d = m.dir(dir);
            let r = fs.unlink(d, os(name));
            let want = match m.get(d, NAMES[name]) {
                None => Err(Errno::ENOENT),
                Some(c) if m.is_dir(c) => Err(Errno::EISDIR),
                Some(c) => {
                    m.entries_mut(d).remove(NAMES[name]);
                    m.drop_if_unlinked(c);
                    Ok(())
                }
            };
            (r, want)
        }
        Op::Rmdir { dir, name } => {
            let d = m.dir(dir);
            let r = fs.rmdir(d, os(name));
            let want = match m.get(d, NAMES[name]) {
                None => Err(Errno::ENOENT),
                Some(c) if !m.is_dir(c) => Err(Errno::ENOTDIR),
                Some(c) if !m.entries(c).is_empty() => Err(Errno::ENOTEMPTY),
                Some(c) => {
                    m.entries_mut(d).remove(NAMES[name]);
                    m.remove_subtree(c);
                    Ok(())
                }
            };
            (r, want)
        }
        Op::Chmod { node, mode } => {
            let id = m.pick(node, |_| true).unwrap();
            let mut set = fusefs::op::SetAttr::default();
            set.mode = Some(mode);
            let r = fs.setattr(id, &set).map(|_| ());
            m.nodes.get_mut(&id).unwrap().mode = mode;
            (r, Ok(()))
        }
        Op::SetXattr { node, name, ref value } => {
            let id = m.pick(node, |_| true).unwrap();
            let r = fs.setxattr(id, OsStr::new(XATTRS[name]), value, XattrFlags::empty());
            m.nodes.get_mut(&id).unwrap().xattrs.insert(XATTRS[name].into(), value.clone());
            (r, Ok(()))
        }
        Op::RemoveXattr { node, name } => {
            let id = m.pick(node, |_| true).unwrap();
            let r = fs.removexattr(id, OsStr::new(XATTRS[name]));
            let had = m.nodes.get_mut(&id).unwrap().xattrs.remove(XATTRS[name]);
            (r, had.map(|_| ()).ok_or(Errno::ENODATA))
        }
    };
    if got != want {
        return Err(format!("{op:?}: MemFs {got:?}, model {want:?}"));
    }
    Ok(())
}

/// RENAME in the model, with MemFs's (and Linux's) checks in MemFs's order.
fn model_rename(
    m: &mut Model,
    d: u64,
    name: &str,
    nd: u64,
    newname: &str,
    how: u8,
) -> Result<(), Errno> {
    let src = m.get(d, name).ok_or(Errno::ENOENT)?;
    let dst = m.get(nd, newname);
    let src_dir = m.is_dir(src);
    if how == 2 {
        let dst = dst.ok_or(Errno::ENOENT)?;
        let dst_dir = m.is_dir(dst);
        if (src_dir && m.is_ancestor(src, nd)) || (dst_dir && m.is_ancestor(dst, d)) {
            return Err(Errno::EINVAL);
        }
        m.entries_mut(d).insert(name.into(), dst);
        m.entries_mut(nd).insert(newname.into(), src);
        m.set_parent(src, nd);
        m.set_parent(dst, d);
        return Ok(());
    }
    if src_dir && m.is_ancestor(src, nd) {
        return Err(Errno::EINVAL);
    }
    if let Some(dst) = dst {
        if how == 1 {
            return Err(Errno::EEXIST);
        }
        if dst == src {
            return Ok(());
        }
        match (m.is_dir(dst), src_dir) {
            (true, true) if !m.entries(dst).is_empty() => return Err(Errno::ENOTEMPTY),
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        m.entries_mut(nd).remove(newname);
        if m.is_dir(dst) {
            m.remove_subtree(dst);
        }
    }
    m.entries_mut(d).remove(name);
    m.entries_mut(nd).insert(newname.into(), src);
    m.set_parent(src, nd);
    if let Some(dst) = dst {
        if m.nodes.contains_key(&dst) {
            m.drop_if_unlinked(dst);
        }
    }
    Ok(())
}

/// The whole tree, compared from the root.
fn compare(fs: &MemFs, m: &Model, dir: u64, path: &str) -> Result<(), String> {
    let mut names = Vec::new();
    fs.readdir(dir, 0, |_, _, _, n| {
        if n != "." && n != ".." {
            names.push(n.to_string_lossy().into_owned());
        }
        false
    })
    .map_err(|e| format!("readdir {path}: {e:?}"))?;
    names.sort();
    let want: Vec<String> = m.entries(dir).keys().cloned().collect();
    if names != want {
        return Err(format!("{path}: MemFs lists {names:?}, model {want:?}"));
    }
    for (name, &id) in m.entries(dir) {
        let p = format!("{path}/{name}");
        let a = fs.lookup(dir, OsStr::new(name)).map_err(|e| format!("lookup {p}: {e:?}"))?;
        fs.forget(a.ino, 1);
        let n = &m.nodes[&id];
        let (kind, size, nlink) = match &n.kind {
            Kind::File(c) => (FileType::RegularFile, c.len() as u64, m.links(id)),
            Kind::Dir { entries, .. } => {
                let subdirs = entries.values().filter(|&&e| m.is_dir(e)).count() as u32;
                (FileType::Directory, 0, 2 + subdirs) // MemFs gives directories no size
            }
        };
        let got = (a.ino, a.kind, a.size, a.nlink, u32::from(a.perm));
        let want = (id, kind, size, nlink, n.mode);
        if got != want {
            return Err(format!(
                "{p}: MemFs (ino, type, size, nlink, mode) {got:?}, model {want:?}"
            ));
        }
        if let Kind::File(c) = &n.kind {
            let mut buf = vec![0u8; c.len() + 16];
            let r = fs.read(id, 0, &mut buf).map_err(|e| format!("read {p}: {e:?}"))?;
            if &buf[..r] != c.as_slice() {
                return Err(format!(
                    "{p}: contents differ ({r} bytes read, {} in the model)",
                    c.len()
                ));
            }
        }
        let list = fs.listxattr(id).map_err(|e| format!("listxattr {p}: {e:?}"))?;
        let mut xnames: Vec<String> = list
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        xnames.sort();
        let want: Vec<String> = n.xattrs.keys().cloned().collect();
        if xnames != want {
            return Err(format!("{p}: xattrs {xnames:?}, model {want:?}"));
        }
        for (k, v) in &n.xattrs {
            let got =
                fs.getxattr(id, OsStr::new(k), |b| b.to_vec()).map_err(|e| format!("{e:?}"))?;
            if &got != v {
                return Err(format!("{p}: xattr {k} is {got:?}, model {v:?}"));
            }
        }
        if matches!(n.kind, Kind::Dir { .. }) {
            compare(fs, m, id, &p)?;
        }
    }
    Ok(())
}

proptest! {
    // PROPTEST_CASES sets the number of sequences (256 by default, under a second).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn memfs_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut o = MemFsOptions::default();
        o.root_owner = (0, 0);
        let fs = MemFs::new(o);
        let mut m = Model::new();
        for (i, op) in ops.iter().enumerate() {
            let r = step(&fs, &mut m, op).and_then(|()| compare(&fs, &m, ROOT, ""));
            prop_assert!(r.is_ok(), "step {i}: {}", r.unwrap_err());
        }
        // Nothing held that the model does not know: every node is reachable or forgotten.
        prop_assert_eq!(fs.stats().nodes, m.nodes.len() as u64);
    }
}
