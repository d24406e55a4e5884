//! `loadgen`: parse arguments, run, print the report, exit 0 (ok), 1 (violations, lost
//! connections or no run at all) or 2 (bad arguments); `--help` and `--version` print
//! and exit 0. See the library documentation.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match loadgen::parse_args(&args) {
        Ok(o) => o,
        Err(loadgen::UsageError::Help) => {
            print!("{}", loadgen::usage());
            return ExitCode::SUCCESS;
        }
        Err(loadgen::UsageError::Version) => {
            print!("{}", loadgen::version());
            return ExitCode::SUCCESS;
        }
        Err(loadgen::UsageError::Invalid(msg)) => {
            eprintln!("loadgen: {msg} (see loadgen --help)");
            return ExitCode::from(2);
        }
    };
    match loadgen::run(&opts) {
        Ok(report) => {
            if opts.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            if report.violations > 0 {
                eprintln!(
                    "loadgen: {} violation(s), evidence above",
                    report.violations
                );
                ExitCode::from(1)
            } else if report.lost_clients > 0 {
                eprintln!(
                    "loadgen: {} client(s) lost their connection, see the errors above",
                    report.lost_clients
                );
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
