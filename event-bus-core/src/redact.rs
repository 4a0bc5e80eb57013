//! Secrets kept out of what leaves the process: `Debug` output, errors and logs show
//! connection URLs with their passwords replaced.

/// `url` with the password of each `scheme://user:password@host` part (comma-separated lists
/// too), or a lone token `scheme://token@host`, replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        // A lone token (`nats://TOKEN@host`) is a secret as well.
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_are_replaced_and_everything_else_kept() {
        assert_eq!(
            redacted_url("amqp://guest:s3cr:et@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redacted_url("redis://:pw@host:6379/0?x=1"),
            "redis://:***@host:6379/0?x=1"
        );
        assert_eq!(
            redacted_url("nats://a:b@h1:4222,nats://c:d@h2:4222"),
            "nats://a:***@h1:4222,nats://c:***@h2:4222"
        );
        assert_eq!(redacted_url("nats://token@host"), "nats://***@host");
        assert_eq!(redacted_url("127.0.0.1:9092"), "127.0.0.1:9092");
        assert_eq!(
            redacted_url("postgres://u:p@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
    }
}
