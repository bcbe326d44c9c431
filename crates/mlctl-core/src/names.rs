//! Name rules of Kubernetes (apimachinery's validation): DNS-1123 labels and subdomains,
//! label keys and values, environment variable names. Each check returns `None` when the
//! name is valid, or the reason it is not, worded as the API server words it.

/// Checks a DNS-1123 label (object names of most kinds, namespaces, container and port-less
/// names): at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric.
pub fn dns1123_label(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "must be no more than 63 characters (it has {})",
            name.len()
        ));
    }
    if !is_label_shape(name) {
        return Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name' or \
             '123-abc')"
                .into(),
        );
    }
    None
}

fn is_label_shape(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| alnum(b) || b == b'-')
}

/// Checks a DNS-1123 subdomain (names of Secrets, ConfigMaps, PVCs, ServiceAccounts):
/// at most 253 characters, dot-separated labels.
pub fn dns1123_subdomain(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 253 {
        return Some(format!(
            "must be no more than 253 characters (it has {})",
            name.len()
        ));
    }
    if !name.split('.').all(is_label_shape) {
        return Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com')"
                .into(),
        );
    }
    None
}

fn is_qualified_name_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 63
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
}

/// Checks a label or annotation key: an optional DNS subdomain prefix and `/`, then a name
/// of at most 63 alphanumerics, '-', '_' or '.'.
pub fn label_key(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Some(why) = dns1123_subdomain(prefix)
    {
        return Some(format!("the prefix {prefix:?} {why}"));
    }
    if !is_qualified_name_part(name) {
        return Some(
            "a label key must be at most 63 alphanumeric characters, '-', '_' or '.', starting \
             and ending with an alphanumeric character, with an optional DNS subdomain prefix \
             and '/' (e.g. 'app.kubernetes.io/name')"
                .into(),
        );
    }
    None
}

/// Checks a label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and
/// ending alphanumeric.
pub fn label_value(value: &str) -> Option<String> {
    if value.is_empty() || is_qualified_name_part(value) {
        None
    } else {
        Some(
            "a label value must be empty or at most 63 alphanumeric characters, '-', '_' or \
             '.', starting and ending with an alphanumeric character"
                .into(),
        )
    }
}

/// Checks an environment variable name: what shells and most programs can read
/// (`[A-Za-z_][A-Za-z0-9_]*`; Kubernetes also allows '.' and '-').
pub fn env_var(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
        None
    } else {
        Some(
            "an environment variable name must consist of letters, digits, '_', '-' or '.', \
             and must not start with a digit"
                .into(),
        )
    }
}

/// Checks a parameter or output name (Argo's parameter names): letters, digits, '-' and
/// '_'.
pub fn param(name: &str) -> Option<String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        None
    } else {
        Some("a parameter name must consist of letters, digits, '-' or '_'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(dns1123_label("train-1"), None);
        assert_eq!(dns1123_label("0abc"), None);
        for bad in ["", "Train", "a_b", "-a", "a-", "a.b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn subdomains() {
        assert_eq!(dns1123_subdomain("aws-credentials"), None);
        assert_eq!(dns1123_subdomain("a.b-c.d"), None);
        for bad in ["", "A", "a..b", ".a", "a_b"] {
            assert!(dns1123_subdomain(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn label_keys_and_values() {
        assert_eq!(label_key("app.kubernetes.io/name"), None);
        assert_eq!(label_key("workload-type"), None);
        assert_eq!(label_key("Accelerator"), None);
        assert!(label_key("a/b/c").is_some());
        assert!(label_key("UPPER.example/x").is_some());
        assert!(label_key("-x").is_some());
        assert_eq!(label_value(""), None);
        assert_eq!(label_value("nvidia-tesla-v100"), None);
        assert!(label_value("has space").is_some());
    }

    #[test]
    fn env_and_params() {
        assert_eq!(env_var("AWS_ACCESS_KEY_ID"), None);
        assert!(env_var("1X").is_some());
        assert!(env_var("A=B").is_some());
        assert_eq!(param("min-accuracy"), None);
        assert!(param("a.b").is_some());
    }
}
