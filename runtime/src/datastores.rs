//! The common code datastores a run drafts from: the one `dittoc
//! --datastore` baked into the executable's payload and those `--datastore
//! FILE` names, each checked against the executable's tokenizer (the
//! fingerprint of its tokenizer section) and vocabulary, read in place from
//! their mappings; and whether the run speculates at all (`--spec`).

use std::time::Instant;

use ditto_contracts::payload::tokenizer_fingerprint;
use ditto_datastore::file::{self, Datastore, Expect};
use ditto_datastore::SuffixStore;

use crate::cli::{Args, Spec};
use crate::payload::Payload;
use crate::Error;

/// The stores to draft from, or `None` when the run does not speculate:
/// `--spec off`, or `--spec auto` (the default) with no datastore (baked
/// in, `--datastore` or `--repo`). Each store loaded is reported on `log`.
pub fn open(
    args: &Args,
    payload: &Payload,
    mut log: impl FnMut(&str) -> Result<(), Error>,
) -> Result<Option<Vec<SuffixStore>>, Error> {
    if args.speculate && args.spec == Spec::Off {
        return Err(Error::Usage(
            "--speculate and --spec off contradict each other: give one".into(),
        ));
    }
    if args.spec() == Spec::Off {
        if let Some(flag) = [
            (!args.datastore.is_empty()).then_some("--datastore"),
            args.repo.as_ref().map(|_| "--repo"),
        ]
        .into_iter()
        .flatten()
        .next()
        {
            return Err(Error::Usage(format!(
                "{flag} gives drafts to speculative decoding, which --spec off turns off"
            )));
        }
        return Ok(None);
    }
    let baked = payload.datastore();
    if baked.is_none() && args.datastore.is_empty() {
        let on = args.spec() == Spec::On || args.repo.is_some();
        return Ok(on.then(Vec::new));
    }
    let fingerprint = tokenizer_fingerprint(payload.tokenizer_json());
    let expect = Expect {
        fingerprint: &fingerprint,
        vocab: u32::try_from(payload.model().vocab).unwrap_or(u32::MAX),
        // The whole order is checked by dittoc when it bakes a store in;
        // here, at every start, what retrieval needs and a sample (the
        // checksum vouches for the rest).
        order: file::Order::Sampled,
    };
    let mut stores = Vec::new();
    if let Some((bytes, section)) = baked {
        let start = Instant::now();
        let label = "the baked-in datastore";
        let found = file::read_in(
            &bytes,
            section.offset as usize,
            section.len as usize,
            "the datastore section",
            expect,
        )
        .map_err(|e| Error::BadPayload {
            path: payload.path().to_path_buf(),
            problem: e.to_string(),
        })?;
        log(&loaded(label, &found, start))?;
        stores.push(found.store.with_label(label));
    }
    for path in &args.datastore {
        let start = Instant::now();
        let found =
            file::open(path, expect).map_err(|e| Error::Datastore(format!("--datastore {e}")))?;
        let label = path.display().to_string();
        log(&loaded(&label, &found, start))?;
        stores.push(found.store.with_label(label));
    }
    Ok(Some(stores))
}

/// `datastore: code.ds: 812 files, 9.4 MiB of source, 2719305 tokens, checked in 0.05 s`
fn loaded(label: &str, found: &Datastore, start: Instant) -> String {
    format!(
        "datastore: {label}: {} file{}, {:.1} MiB of source, {} tokens, checked in {:.2} s",
        found.summary.files,
        if found.summary.files == 1 { "" } else { "s" },
        found.summary.source_bytes as f64 / f64::from(1 << 20),
        found.tokens(),
        start.elapsed().as_secs_f64()
    )
}

/// What each store offered during a generation, for the speculation line:
/// `; code.ds: 9 of 40 retrievals matched, 57 tokens proposed`.
pub fn usage(stores: &[SuffixStore]) -> String {
    stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let u = store.usage();
            let label = match store.label() {
                "" => format!("store {}", i + 1),
                label => label.to_string(),
            };
            format!(
                "; {label}: {} of {} retrievals matched, {} tokens proposed, {:.1} ms",
                u.matches,
                u.retrievals,
                u.proposed,
                u.nanos as f64 / 1e6
            )
        })
        .collect()
}
