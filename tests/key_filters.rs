//! Key filters of an updated index (docs/FORMAT.md §10.4, design §4.5): every `add`
//! writes its segment's `keys.filter` and the generation's union filter, which grows
//! past its capacity by a rebuild at twice the keys; an index updated before filters
//! existed answers as before and its next `add` covers its segments; a full `compact`
//! leaves no filter. Through all of it, lookups answer as a fresh build does and
//! `verify` finds every key of every segment in its filters.

use breachdex::internals::filter::{FilterReader, UNION_KIND};
use breachdex::internals::{Access, Bytes, FORMAT_VERSION, FileView};
use breachdex::{
    AddOptions, BuildOptions, Catalog, CompactOptions, GenerationManifest, Index, OpenOptions, Query, UnixTime,
    add_to_index, build_index, compact_index, verify,
};
use std::path::{Path, PathBuf};

const EPOCH: i64 = 1_700_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generation(index: &Path) -> GenerationManifest {
    GenerationManifest::from_file_text(&std::fs::read_to_string(index.join("manifest.json")).unwrap()).unwrap()
}

/// A catalog at `dir/name.json` of the given sources (JSON values), each file path made
/// absolute against `base`.
fn catalog(dir: &Path, name: &str, base: &Path, sources: Vec<serde_json::Value>) -> Catalog {
    let sources: Vec<serde_json::Value> = sources
        .into_iter()
        .map(|mut s| {
            for f in s["files"].as_array_mut().unwrap() {
                let p = base.join(f["path"].as_str().unwrap());
                f["path"] = p.to_string_lossy().into_owned().into();
            }
            s
        })
        .collect();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::json!({ "sources": sources }).to_string()).unwrap();
    Catalog::load(&path).unwrap()
}

fn sources_of(path: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["sources"].as_array().unwrap().clone()
}

/// A new source `id` of `n` e-mails `u<id>-<i>@filters.example` (and usernames).
fn small_source(dir: &Path, id: u32, n: u32) -> serde_json::Value {
    let file = dir.join(format!("s{id}.csv"));
    let mut text = String::from("email,username,password_hash,password_type\n");
    for i in 0..n {
        text.push_str(&format!(
            "u{id}-{i}@filters.example,nick{id}x{i},5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8,sha1\n"
        ));
    }
    std::fs::write(&file, text).unwrap();
    serde_json::json!({"id": id, "name": format!("small-{id}"), "title": format!("Small {id}"), "date": "2026-01-01",
        "description": "test source", "files": [{"path": file.to_string_lossy(), "format": "csv"}]})
}

fn add(dir: &Path, catalog: &Catalog, tmp: &Path) {
    let options = AddOptions {
        threads: Some(1),
        source_date_epoch: Some(EPOCH),
        rejects_path: Some(tmp.join("add.rejects")),
        ..Default::default()
    };
    add_to_index(dir, catalog, &options).unwrap();
}

fn build(catalog: &Catalog, dir: &Path, tmp: &Path) {
    let options = BuildOptions {
        threads: Some(1),
        source_date_epoch: Some(EPOCH),
        rejects_path: Some(tmp.join("build.rejects")),
        ..Default::default()
    };
    build_index(catalog, dir, &options).unwrap();
}

/// `check` of every text in both indexes gives the same answer.
#[track_caller]
fn same_answers(index: &Path, fresh: &Path, texts: &[String]) {
    let (a, b) =
        (Index::open(index, &OpenOptions::default()).unwrap(), Index::open(fresh, &OpenOptions::default()).unwrap());
    let now = UnixTime::from_seconds(1_780_000_000);
    for text in texts {
        let x = serde_json::to_value(a.check(&Query::auto(text), now).unwrap()).unwrap();
        let y = serde_json::to_value(b.check(&Query::auto(text), now).unwrap()).unwrap();
        assert_eq!(x, y, "check {text}");
    }
}

fn union_reader(index: &Path, g: &GenerationManifest) -> FilterReader {
    let name = g.union_filter.as_deref().expect("a union filter");
    let bytes = Bytes::map_path(&index.join(name), Access::Random, false).unwrap();
    let view = FileView::parse_version(name, bytes, UNION_KIND, FORMAT_VERSION).unwrap();
    FilterReader::new(view, u64::from_str_radix(g.filter_seed.as_deref().unwrap(), 16).unwrap()).unwrap()
}

fn sample_texts() -> Vec<String> {
    ["user@example.com", "optout@example.net", "traveller@example.org", "globetrotter", "darkstar99", "jdoe"]
        .iter()
        .map(|s| s.to_string())
        .chain(["nobody@x.org".to_string(), "u900-0@filters.example".to_string()])
        .collect()
}

#[test]
fn an_index_updated_before_filters_keeps_answering_and_its_next_add_covers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sample_dir = repo().join("testdata/sample");
    let week2_dir = sample_dir.join("week2");
    let sample = sources_of(&sample_dir.join("catalog.json"));
    let week2 = sources_of(&week2_dir.join("catalog.json"));
    let travel: Vec<_> = week2.iter().filter(|s| s["id"] == 5).cloned().collect();
    let stealer: Vec<_> = week2.iter().filter(|s| s["id"] == 2).cloned().collect();
    let dir = t.join("index");
    build(&catalog(t, "sample", &sample_dir, sample.clone()), &dir, t);
    add(&dir, &catalog(t, "travel", &week2_dir, travel.clone()), t);

    // Generation 2 as a writer from before filters left it: no seed, no union, no
    // segment filter.
    let mut g = generation(&dir);
    assert!(g.filter_seed.is_some() && g.union_filter.is_some() && g.segments[1].filter);
    for name in [g.union_filter.clone().unwrap(), "segments/g00000002/keys.filter".to_string()] {
        std::fs::remove_file(dir.join(&name)).unwrap();
        g.files.retain(|f| f.name != name);
    }
    g.filter_seed = None;
    g.union_filter = None;
    g.segments[1].filter = false;
    std::fs::write(dir.join("manifest.json"), g.to_file_text().unwrap()).unwrap();
    assert!(verify(&dir).unwrap().is_ok());
    let mut fresh_sources = sample.clone();
    fresh_sources.extend(travel.iter().map(|s| {
        let mut s = s.clone();
        s["files"][0]["path"] = week2_dir.join(s["files"][0]["path"].as_str().unwrap()).to_string_lossy().into();
        s
    }));
    let fresh = t.join("fresh2");
    build(&catalog(t, "fresh2", &sample_dir, fresh_sources), &fresh, t);
    same_answers(&dir, &fresh, &sample_texts());

    // The next add writes its own filter and a union over both segments after the base.
    add(&dir, &catalog(t, "stealer", &week2_dir, stealer), t);
    let g = generation(&dir);
    assert_eq!(g.generation, 3);
    assert!(!g.segments[1].filter, "a segment keeps what it had: no filter");
    assert!(g.segments[2].filter);
    let union = union_reader(&dir, &g);
    let keys = |seg: &str| {
        let m = breachdex::read_manifest(&dir.join(seg)).unwrap();
        m.counts.email_keys + m.counts.username_keys
    };
    assert_eq!(union.keys(), keys("segments/g00000002") + keys("segments/g00000003"));
    assert!(verify(&dir).unwrap().is_ok(), "every key of both segments is in the union");
    let all = catalog(t, "all", &sample_dir, {
        let mut all = sample;
        for s in &week2 {
            let mut s = s.clone();
            s["files"][0]["path"] = week2_dir.join(s["files"][0]["path"].as_str().unwrap()).to_string_lossy().into();
            match all.iter_mut().find(|k| k["id"] == s["id"]) {
                Some(known) => known["files"].as_array_mut().unwrap().push(s["files"][0].clone()),
                None => all.push(s),
            }
        }
        all
    });
    let fresh = t.join("fresh3");
    build(&all, &fresh, t);
    same_answers(&dir, &fresh, &sample_texts());
}

#[test]
fn the_union_filter_grows_past_its_capacity_and_compaction_drops_the_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sample_dir = repo().join("testdata/sample");
    let sample = sources_of(&sample_dir.join("catalog.json"));
    let dir = t.join("index");
    build(&catalog(t, "sample", &sample_dir, sample.clone()), &dir, t);
    let mut all = sample;
    let mut texts = sample_texts();
    let mut blocks = Vec::new();
    for (k, id) in (900..906).enumerate() {
        let source = small_source(t, id, 15);
        add(&dir, &catalog(t, &format!("add{id}"), t, vec![source.clone()]), t);
        all.push(source);
        texts.extend([format!("u{id}-0@filters.example"), format!("u{id}-14@filters.example"), format!("nick{id}x7")]);
        texts.push(format!("u{id}-15@filters.example"));
        let g = generation(&dir);
        assert_eq!(g.union_filter.as_deref(), Some(format!("filters/g{:08}.union", g.generation).as_str()));
        let union = union_reader(&dir, &g);
        // 15 e-mail and 15 username keys per add: the union holds them all.
        assert_eq!(union.keys(), 30 * (k as u64 + 1));
        blocks.push(union.blocks(breachdex::IdentifierKind::Email));
        assert!(verify(&dir).unwrap().is_ok(), "after add {id}");
    }
    // Rebuilt at twice the keys whenever a copy would pass 12 bits per key: 2 × 15 keys
    // take one block (capacity 42), 2 × 45 three (rounded to four: capacity 170).
    assert_eq!(blocks, [1, 1, 4, 4, 4, 4]);
    let fresh = t.join("fresh");
    build(&catalog(t, "all", &sample_dir, all), &fresh, t);
    same_answers(&dir, &fresh, &texts);

    let compact = CompactOptions { source_date_epoch: Some(EPOCH), threads: Some(1), ..Default::default() };
    compact_index(&dir, &compact).unwrap();
    let g = generation(&dir);
    assert_eq!(g.segments.len(), 1);
    assert!(g.union_filter.is_none() && !g.segments[0].filter, "a compacted base has no filter");
    assert!(!g.files.iter().any(|f| f.name.contains("filter")), "{:?}", g.files);
    assert!(!dir.join("filters").read_dir().unwrap().any(|_| true), "the old unions are collected");
    assert!(verify(&dir).unwrap().is_ok());
    same_answers(&dir, &fresh, &texts);
    // The seed stays for the next add, whose union covers its one segment.
    add(&dir, &catalog(t, "add906", t, vec![small_source(t, 906, 5)]), t);
    let g = generation(&dir);
    assert_eq!(union_reader(&dir, &g).keys(), 10);
    let report = verify(&dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_segment_added_to_an_accelerated_index_is_accelerated_and_answers_as_a_fresh_build() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sample_dir = repo().join("testdata/sample");
    let sample = sources_of(&sample_dir.join("catalog.json"));
    let accelerated = |catalog: &Catalog, dir: &Path| {
        let options = BuildOptions {
            threads: Some(1),
            source_date_epoch: Some(EPOCH),
            rejects_path: Some(t.join("build.rejects")),
            accelerator: true,
            ..Default::default()
        };
        build_index(catalog, dir, &options).unwrap();
    };
    let dir = t.join("index");
    accelerated(&catalog(t, "sample", &sample_dir, sample.clone()), &dir);
    let mut all = sample;
    let mut texts = sample_texts();
    for id in [900, 901] {
        let source = small_source(t, id, 12);
        add(&dir, &catalog(t, &format!("add{id}"), t, vec![source.clone()]), t);
        all.push(source);
        texts.extend([format!("u{id}-0@filters.example"), format!("nick{id}x11"), format!("u{id}-12@filters.example")]);
    }
    let segment = breachdex::read_manifest(&dir.join("segments/g00000003")).unwrap();
    assert!(segment.files.iter().any(|f| f.name.ends_with(".fpt")), "{:?}", segment.files);
    assert!(verify(&dir).unwrap().is_ok());
    let fresh = t.join("fresh");
    accelerated(&catalog(t, "all", &sample_dir, all), &fresh);
    same_answers(&dir, &fresh, &texts);
}
