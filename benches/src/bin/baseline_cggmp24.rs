//! `tacit-baseline-cggmp24 [--runs N]`: times full cggmp24 threshold ECDSA signings (2 of 3)
//! and prints one JSON object. `tacit bench sign` runs this binary (found next to its own
//! executable) to print the baseline beside its own figures, so that cggmp24 stays a
//! dependency of `benches/` only. Build it with
//! `cargo build --release -p tacit-benches --bin tacit-baseline-cggmp24`.

use tacit_benches::cggmp24_baseline::{Cggmp24, CGGMP24_VERSION};

fn runs_arg() -> Result<usize, String> {
    let mut args = std::env::args().skip(1);
    let mut runs = 5usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                let v = args.next().ok_or("--runs needs a value")?;
                runs = v.parse().map_err(|_| format!("--runs: not a number: {v}"))?;
            }
            "--json" => {}
            other => return Err(format!("unknown argument {other} (usage: tacit-baseline-cggmp24 [--runs N])")),
        }
    }
    if runs == 0 || runs > 1000 {
        return Err("--runs is 1 to 1000".into());
    }
    Ok(runs)
}

fn run() -> Result<serde_json::Value, String> {
    let runs = runs_arg()?;
    let mut cg = Cggmp24::new()?;
    // One untimed signing warms caches and the runtime.
    cg.sign()?;
    let mut times = cg.time(runs)?;
    times.sort_by(f64::total_cmp);
    let p50 = times.get(times.len() / 2).copied().unwrap_or_default();
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    Ok(serde_json::json!({
        "baseline": format!("cggmp24 {CGGMP24_VERSION}"),
        "protocol": "full interactive signing (presigning and online rounds) from key shares to a verified signature",
        "parties": 3,
        "signers": 2,
        "runs": runs,
        "cggmp24_sign_ms": p50,
        "cggmp24_sign_mean_ms": mean,
        "transport": "in-process simulated network (round-based sim), two tokio workers",
    }))
}

fn main() {
    match run() {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("tacit-baseline-cggmp24: {e}");
            std::process::exit(1);
        }
    }
}
