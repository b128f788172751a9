//! Damage to the generation layer of an updated index (the generation manifest, a
//! segment's manifest or directory, a deletion, tombstones or change file, a path in the
//! manifest leading out of the index) never makes `Index::open` or `verify` panic: one
//! of them names the damaged file, and `verify` never passes a damaged index.

use breachdex::{AddOptions, BuildOptions, Catalog, GenerationManifest, Index, OpenOptions, RemoveOptions};
use breachdex::{RemoveTarget, add_to_index, build_index, remove_from_index, verify};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample, plus week 2's dumps, less an identity of each segment: two segments, each
/// with a deletion file, a tombstones file and three change files.
fn updated_index(dir: &Path) -> PathBuf {
    let index = dir.join("good");
    let sample = Catalog::load(&repo().join("testdata/sample/catalog.json")).unwrap();
    let build = BuildOptions {
        threads: Some(1),
        source_date_epoch: Some(1_700_000_000),
        rejects_path: Some(dir.join("rejects")),
        ..BuildOptions::default()
    };
    build_index(&sample, &index, &build).unwrap();
    let week2 = Catalog::load(&repo().join("testdata/sample/week2/catalog.json")).unwrap();
    let add = AddOptions {
        memory_budget: breachdex::DEFAULT_MEMORY_BUDGET,
        threads: Some(1),
        source_date_epoch: Some(1_700_100_000),
        rejects_path: Some(dir.join("rejects2")),
        ..AddOptions::default()
    };
    add_to_index(&index, &week2, &add).unwrap();
    let remove = RemoveOptions { salt: None, source_date_epoch: Some(1_700_200_000) };
    let target = RemoveTarget::Identities(vec!["traveller@example.org".into(), "user@example.com".into()]);
    remove_from_index(&index, &target, &remove).unwrap();
    assert!(verify(&index).unwrap().is_ok());
    index
}

/// A fresh copy of `from` at `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn generation(index: &Path) -> GenerationManifest {
    GenerationManifest::from_file_text(&std::fs::read_to_string(index.join("manifest.json")).unwrap()).unwrap()
}

fn write_generation(index: &Path, g: &GenerationManifest) {
    std::fs::write(index.join("manifest.json"), g.to_file_text().unwrap()).unwrap();
}

/// The index's layer files whose names start with `dir/`.
fn layer_files(index: &Path, dir: &str) -> Vec<String> {
    let files: Vec<String> =
        generation(index).files.iter().map(|f| f.name.clone()).filter(|n| n.starts_with(&format!("{dir}/"))).collect();
    assert!(!files.is_empty(), "the updated index has files under {dir}/");
    files
}

/// Rewrites a framed file's body with `edit`, recomputes its footer checksum and its
/// entry in the generation manifest: damage that only the reader's checks can find.
fn rewrite_body(index: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    const HEADER: usize = breachdex::internals::HEADER_LEN;
    const FOOTER: usize = 16;
    let path = index.join(name);
    let bytes = std::fs::read(&path).unwrap();
    let mut body = bytes[HEADER..bytes.len() - FOOTER].to_vec();
    edit(&mut body);
    let mut file = bytes[..HEADER].to_vec();
    file.extend_from_slice(&body);
    let checksum = xxhash_rust::xxh3::xxh3_64(&file);
    file.extend_from_slice(&checksum.to_le_bytes());
    file.extend_from_slice(&bytes[bytes.len() - 8..]);
    std::fs::write(&path, &file).unwrap();
    let mut g = generation(index);
    let entry = g.files.iter_mut().find(|f| f.name == name).unwrap();
    entry.size = file.len() as u64;
    entry.xxh3 = format!("{checksum:016x}");
    write_generation(index, &g);
}

/// The contract for one damaged copy: no panic; `open` fails naming `name`, or opens and
/// `verify` names it; `verify` never passes.
#[track_caller]
fn assert_named(index: &Path, name: &str, what: &str) {
    let opened = Index::open(index, &OpenOptions::default());
    if let Err(e) = &opened {
        assert!(e.to_string().contains(name), "{what}: the open error names {name}: {e}");
    }
    if let Ok(index) = &opened {
        for email in ["user@example.com", "optout@example.net", "traveller@example.org", "absent@example.org"] {
            let _ = index.check(&breachdex::Query::Email(email), breachdex::UnixTime::from_seconds(1_763_856_000));
        }
    }
    match verify(index) {
        Ok(report) => {
            assert!(!report.is_ok(), "{what}: verify found nothing");
            assert!(
                report.problems.iter().any(|p| p.contains(name)),
                "{what}: verify names {name}: {:?}",
                report.problems
            );
        }
        Err(e) => assert!(e.to_string().contains(name), "{what}: the verify error names {name}: {e}"),
    }
}

struct Copies {
    _tmp: tempfile::TempDir,
    good: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Copies {
    fn new() -> Copies {
        let tmp = tempfile::tempdir().unwrap();
        let good = updated_index(tmp.path());
        Copies { good, _tmp: tmp, n: std::cell::Cell::new(0) }
    }

    fn copy(&self) -> PathBuf {
        let n = self.n.get();
        self.n.set(n + 1);
        let to = self.good.with_file_name(format!("c{n}"));
        copy_dir(&self.good, &to);
        to
    }
}

#[test]
fn damaged_generation_manifest_is_named() {
    let c = Copies::new();
    let index = c.copy();
    let path = index.join("manifest.json");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\"operation\": \"remove\"").expect("the manifest names its operation");
    text.replace_range(at..at + 21, "\"operation\": \"rEmove\"");
    std::fs::write(&path, text).unwrap();
    assert_named(&index, "manifest.json", "an edited generation manifest");
}

#[test]
fn a_segment_manifest_swapped_edited_or_missing_is_named() {
    let c = Copies::new();
    let seg = "segments/g00000002";
    let manifest = format!("{seg}/manifest.json");

    let index = c.copy();
    std::fs::copy(index.join("root.manifest.json"), index.join(&manifest)).unwrap();
    assert_named(&index, &manifest, "a segment manifest swapped for the base's");

    let index = c.copy();
    let text = std::fs::read_to_string(index.join(&manifest)).unwrap();
    std::fs::write(index.join(&manifest), text.replacen("\"records\"", "\"recordz\"", 1)).unwrap();
    assert_named(&index, &manifest, "an edited segment manifest");

    let index = c.copy();
    std::fs::remove_dir_all(index.join(seg)).unwrap();
    assert_named(&index, seg, "a missing segment directory");
}

#[test]
fn damaged_deletion_files_are_named() {
    let c = Copies::new();
    for name in layer_files(&c.good, "deletes").into_iter().filter(|n| n.ends_with(".rows")) {
        let index = c.copy();
        let path = index.join(&name);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_named(&index, &name, "a truncated deletion file");

        let index = c.copy();
        rewrite_body(&index, &name, |body| body.iter_mut().for_each(|b| *b = 0xFF));
        assert_named(&index, &name, "a deletion file with rows out of range");

        let index = c.copy();
        rewrite_body(&index, &name, |body| body.reverse());
        assert_named(&index, &name, "a deletion file in the wrong order");
    }
}

#[test]
fn a_flipped_byte_in_tombstones_or_change_files_is_named() {
    let c = Copies::new();
    let mut names = layer_files(&c.good, "tombstones");
    names.extend(layer_files(&c.good, "changes"));
    for name in names {
        let len = std::fs::metadata(c.good.join(&name)).unwrap().len() as usize;
        for at in [0, 12, len / 2, len - 1] {
            let index = c.copy();
            let path = index.join(&name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            assert_named(&index, &name, &format!("{name} with byte {at} flipped"));
        }
    }
}

#[test]
fn a_manifest_path_out_of_the_index_is_refused() {
    let c = Copies::new();
    let outside = c.good.with_file_name("outside");
    copy_dir(&c.good.join("segments/g00000002"), &outside);

    let index = c.copy();
    let mut g = generation(&index);
    g.segments[1].name = "../outside".into();
    g.segments[1].manifest = "../outside/manifest.json".into();
    write_generation(&index, &g);
    assert_named(&index, "../outside", "a segment outside the index");

    let index = c.copy();
    let mut g = generation(&index);
    let name = g.files[0].name.clone();
    std::fs::copy(index.join(&name), outside.join("x")).unwrap();
    g.files[0].name = "../outside/x".into();
    write_generation(&index, &g);
    assert_named(&index, "../outside/x", "a layer file outside the index");
}

#[test]
fn damaged_key_filters_are_named() {
    let c = Copies::new();
    let g = generation(&c.good);
    let union = g.union_filter.clone().expect("an add writes the union filter");
    let own = "segments/g00000002/keys.filter".to_string();
    assert!(g.segments[1].filter && g.file(&own).is_some(), "an add writes the segment's filter");
    for name in [union.clone(), own.clone()] {
        let len = std::fs::metadata(c.good.join(&name)).unwrap().len() as usize;
        for at in [0, 12, 40, len / 2, len - 1] {
            let index = c.copy();
            let path = index.join(&name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            assert_named(&index, &name, &format!("{name} with byte {at} flipped"));
        }
        let index = c.copy();
        let path = index.join(&name);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 64]).unwrap();
        assert_named(&index, &name, &format!("{name} truncated"));

        // Every bit cleared under valid checksums: the header and frame are sound, so
        // only the walk over the segment's keys can tell; open must not answer from it
        // unnoticed by verify.
        let index = c.copy();
        rewrite_body(&index, &name, |body| body.iter_mut().for_each(|b| *b = 0));
        assert_named(&index, &name, &format!("{name} with every bit cleared"));

        // Gone from the disk.
        let index = c.copy();
        std::fs::remove_file(index.join(&name)).unwrap();
        assert_named(&index, &name, &format!("{name} missing"));
    }

    // Another seed than the index's: every filter is refused, naming the first.
    let index = c.copy();
    let mut g = generation(&index);
    g.filter_seed = Some("0123456789abcdef".into());
    write_generation(&index, &g);
    assert_named(&index, "keys.filter", "a filter seed that is not the filters'");

    // A filter where the manifest says the segment has none is not part of the segment;
    // a union that does not cover the segments' keys is another generation's.
    let index = c.copy();
    let mut g = generation(&index);
    g.segments[1].filter = false;
    g.files.retain(|f| f.name != own);
    write_generation(&index, &g);
    assert_named(&index, "keys.filter", "a segment filter the manifest does not list");

    let index = c.copy();
    let mut g = generation(&index);
    g.segments[1].filter = false;
    g.files.retain(|f| f.name != own);
    write_generation(&index, &g);
    std::fs::remove_file(index.join(&own)).unwrap();
    let union_path = index.join(&union);
    let small = breachdex::internals::filter::FilterBuilder::new(
        1,
        1,
        u64::from_str_radix(g.filter_seed.as_deref().unwrap(), 16).unwrap(),
    );
    let summary = small.write(&union_path, breachdex::internals::filter::UNION_KIND).unwrap();
    let entry = g.files.iter_mut().find(|f| f.name == union).unwrap();
    entry.size = summary.size;
    entry.xxh3 = format!("{:016x}", summary.xxh3);
    write_generation(&index, &g);
    assert_named(&index, &union, "a union filter of other keys");
}
