//! The client's deadline (`grpc-timeout`) on every RPC. When it passes, the
//! handler is dropped and the answer is DEADLINE_EXCEEDED, as grpc-go
//! servers answer. (tonic's own timeout layer answers CANCELLED, which a
//! client that has not fired its own timer yet passes on: critest's
//! "should timeout if requested" expects DEADLINE_EXCEEDED.)

use std::time::Duration;

/// The longest timeout the header can express is 99999999 hours; anything
/// above this is treated as no deadline.
const MAX_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parse a `grpc-timeout` value: 1–8 ASCII digits and a unit (H, M, S, m,
/// u, n). `None` for an absent or malformed value (no deadline, as grpc-go).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let d = match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    (d <= MAX_DEADLINE).then_some(d)
}

/// The request's deadline, from its `grpc-timeout` header.
pub fn of_request<B>(req: &http::Request<B>) -> Option<Duration> {
    req.headers()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Run `fut` (an RPC) within `deadline`; past it, answer DEADLINE_EXCEEDED.
pub async fn run<F>(
    deadline: Option<Duration>,
    method: &str,
    fut: F,
) -> http::Response<tonic::body::Body>
where
    F: std::future::Future<Output = http::Response<tonic::body::Body>>,
{
    let Some(d) = deadline else {
        return fut.await;
    };
    match tokio::time::timeout(d, fut).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::debug!(
                method,
                deadline_us = d.as_micros() as u64,
                "deadline exceeded"
            );
            let name = method.rsplit('/').next().unwrap_or(method);
            crate::metrics::global().observe_rpc(name, tonic::Code::DeadlineExceeded, d);
            tonic::Status::deadline_exceeded(format!("deadline of {d:?} exceeded")).into_http()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout("1m"), Some(Duration::from_millis(1)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("500u"), Some(Duration::from_micros(500)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "1", "1x", "-1m", "123456789m", "1.5S", " 1m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_answers_deadline_exceeded() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            http::Response::new(tonic::body::Body::default())
        };
        let resp = run(Some(Duration::from_millis(1)), "/x", slow).await;
        assert_eq!(
            resp.headers().get("grpc-status").unwrap(),
            &(tonic::Code::DeadlineExceeded as i32).to_string()
        );
        let fast = async { http::Response::new(tonic::body::Body::default()) };
        let resp = run(Some(Duration::from_secs(5)), "/x", fast).await;
        assert!(resp.headers().get("grpc-status").is_none());
    }
}
