//! Stop signals: the image's `STOPSIGNAL` (a name or a number) and CRI's
//! `ContainerConfig.stop_signal` (an enum, CRI 1.33+), both to a Linux
//! signal number, and a number back to CRI's enum for `ContainerStatus`.
//! Pure translation of CRI vocabulary, so `cri::validate` can check a
//! stop signal without reaching into a domain.

use crate::cri::Signal;

/// glibc's first and last real-time signals (the kernel's 32 and 33 are
/// taken by the C library), as Docker and containerd number them.
const RTMIN: u32 = 34;
const RTMAX: u32 = 64;

const NAMED: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`, `RTMAX-1` → the signal number.
pub fn parse_signal(s: &str) -> Option<u32> {
    if let Ok(n) = s.trim().parse::<u32>() {
        return (1..=RTMAX).contains(&n).then_some(n);
    }
    let name = s.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return offset(RTMIN, rest, 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return offset(RTMAX, rest, -1);
    }
    NAMED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v as u32)
}

/// `""` → base; `+n` (for RTMIN) or `-n` (for RTMAX) within the range.
fn offset(base: u32, rest: &str, sign: i64) -> Option<u32> {
    if rest.is_empty() {
        return Some(base);
    }
    let want = if sign > 0 { '+' } else { '-' };
    let n: i64 = rest.strip_prefix(want)?.parse().ok()?;
    let v = base as i64 + sign * n;
    (RTMIN as i64..=RTMAX as i64)
        .contains(&v)
        .then_some(v as u32)
}

/// The name of a CRI stop signal as `parse_signal` reads it; `None` for
/// `RUNTIME_DEFAULT` (the image's, else SIGTERM), `Err` for a value the
/// enum does not have.
pub fn cri_signal_name(v: i32) -> Result<Option<String>, String> {
    let s = Signal::try_from(v).map_err(|_| format!("{v} is not a CRI signal"))?;
    if s == Signal::RuntimeDefault {
        return Ok(None);
    }
    let name = s.as_str_name();
    let name = if let Some(n) = name.strip_prefix("SIGRTMINPLUS") {
        format!("SIGRTMIN+{n}")
    } else if let Some(n) = name.strip_prefix("SIGRTMAXMINUS") {
        format!("SIGRTMAX-{n}")
    } else {
        name.to_string()
    };
    Ok(Some(name))
}

/// A signal number as CRI's enum (`RUNTIME_DEFAULT` when it has no name).
pub fn to_cri(n: u32) -> Signal {
    let name = match n {
        RTMIN => "SIGRTMIN".to_string(),
        RTMAX => "SIGRTMAX".to_string(),
        n if n > RTMIN && n < RTMIN + 16 => format!("SIGRTMINPLUS{}", n - RTMIN),
        n if n > RTMIN && n < RTMAX => format!("SIGRTMAXMINUS{}", RTMAX - n),
        n => match NAMED.iter().find(|(_, v)| *v as u32 == n) {
            Some((name, _)) => format!("SIG{name}"),
            None => return Signal::RuntimeDefault,
        },
    };
    Signal::from_str_name(&name).unwrap_or(Signal::RuntimeDefault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGQUIT"), Some(3));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGRTMIN+2"), Some(36));
        assert_eq!(parse_signal("RTMAX-1"), Some(63));
        assert_eq!(parse_signal("SIGRTMAX"), Some(64));
        assert_eq!(parse_signal("SIGRTMIN+40"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("BOGUS"), None);
    }

    #[test]
    fn every_cri_signal_names_a_linux_signal_and_comes_back() {
        assert_eq!(cri_signal_name(0), Ok(None));
        assert!(cri_signal_name(999).is_err());
        for v in 1..=65 {
            let name = cri_signal_name(v).unwrap().expect("named");
            let n = parse_signal(&name).unwrap_or_else(|| panic!("{name} unparsed"));
            let back = to_cri(n);
            // Aliases (SIGIOT, SIGCLD, SIGPOLL) come back as the usual name
            // of the same number.
            assert_eq!(
                parse_signal(&cri_signal_name(back as i32).unwrap().unwrap()),
                Some(n),
                "{name}"
            );
        }
        assert_eq!(to_cri(15), Signal::Sigterm);
        assert_eq!(to_cri(35), Signal::Sigrtminplus1);
        assert_eq!(to_cri(63), Signal::Sigrtmaxminus1);
    }
}
