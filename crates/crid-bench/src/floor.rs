//! The machine's floor for a local round trip: one byte each way over a unix
//! socket pair between two threads that block in `read`. Every CRI call pays
//! at least this (the client wakes the server, the server wakes the client);
//! on a VM with idle vCPUs each wake-up is costly.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Round trips (µs) of `rounds` pings, with `pause` between them so that
/// both sides go idle as they do between kubelet's calls (0: back to back).
pub fn unix_round_trips(rounds: usize, pause: Duration) -> std::io::Result<Vec<f64>> {
    let (mut client, mut server) = UnixStream::pair()?;
    let echo = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while server.read_exact(&mut b).is_ok() {
            if server.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::with_capacity(rounds);
    let mut b = [0u8; 1];
    for _ in 0..rounds {
        let t = Instant::now();
        client.write_all(b"x")?;
        client.read_exact(&mut b)?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    drop(client);
    let _ = echo.join();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_round_trip_is_timed() {
        let v = super::unix_round_trips(20, std::time::Duration::ZERO).unwrap();
        assert_eq!(v.len(), 20);
        assert!(v.iter().all(|us| *us > 0.0));
    }
}
