//! `breachdex-gen`: writes a synthetic breach catalog and dumps (see the library docs).

use breachdex_gen::{Format, GenConfig, Profile, generate};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: breachdex-gen --records N --out DIR [--sources S] [--seed X] \
[--bad-ratio F] [--identities N] [--zipf S] [--formats csv,jsonl,combo] [--gzip] [--threads N] [--profile synthetic|realistic]";

fn parse_args() -> Result<GenConfig, String> {
    let mut args = std::env::args().skip(1);
    let mut records: Option<u64> = None;
    let mut out: Option<String> = None;
    let mut config = GenConfig::new(0, "");
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.replace('_', "").parse().map_err(|_| format!("{flag}: '{v}' is not a valid number"))
    }
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--records" => records = Some(num(&flag, args.next())?),
            "--out" => out = Some(args.next().ok_or("--out needs a value")?),
            "--sources" => config.sources = num(&flag, args.next())?,
            "--seed" => config.seed = num(&flag, args.next())?,
            "--bad-ratio" => config.bad_line_ratio = num(&flag, args.next())?,
            "--identities" => config.identities = Some(num(&flag, args.next())?),
            "--zipf" => config.zipf_exponent = num(&flag, args.next())?,
            "--threads" => config.threads = num(&flag, args.next())?,
            "--gzip" => config.gzip = true,
            "--profile" => {
                let name = args.next().ok_or("--profile needs a value")?;
                config.profile =
                    Profile::parse(&name).ok_or_else(|| format!("unknown profile '{name}' (synthetic, realistic)"))?;
            }
            "--formats" => {
                let list = args.next().ok_or("--formats needs a value")?;
                config.formats = list
                    .split(',')
                    .map(|f| Format::parse(f).ok_or_else(|| format!("unknown format '{f}' (csv, jsonl, combo)")))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    config.records = records.ok_or_else(|| format!("--records is required\n{USAGE}"))?;
    config.out_dir = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?.into();
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    match generate(&config) {
        Ok(summary) => {
            print!("{summary}");
            let secs = start.elapsed().as_secs_f64();
            println!(
                "written in {secs:.2} s ({:.1} MB/s, {:.2} M records/s)",
                summary.bytes as f64 / 1e6 / secs,
                summary.records as f64 / 1e6 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("breachdex-gen: {e}");
            ExitCode::FAILURE
        }
    }
}
