//! Image references (`[host[:port]/]path[:tag][@digest]`), parsed and normalized as containerd
//! resolves them, and the ECR registry a host name denotes.
//!
//! Apart from the check because the grammar is its own concern: the settings validate
//! configured images with it, discovery tells images from other values with it, and the
//! registry client addresses repositories by it. It knows nothing of the check.

use std::fmt;

/// A parsed image reference, normalized as containerd resolves it: a name without a registry
/// is on Docker Hub, and a single-component Docker Hub name is under `library/`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ImageRef {
    /// `host[:port]`; `docker.io` for Docker Hub.
    pub(super) registry: String,
    /// The repository path, e.g. `library/nginx`.
    pub(super) repository: String,
    /// The tag, when written.
    pub(super) tag: Option<String>,
    /// The digest (`sha256:…`), when written; it wins over the tag, as for containerd.
    pub(super) digest: Option<String>,
}

/// Docker Hub, as references and pull secrets name it.
pub(super) const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    /// Parses a reference by the grammar of the distribution project
    /// (`[host[:port]/]path[:tag][@digest]`).
    pub(super) fn parse(raw: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| Err(format!("{raw:?} is not an image reference: {why}"));
        if raw.is_empty() {
            return bad("it is empty");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains whitespace");
        }
        let (name_tag, digest) = match raw.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (raw, None),
        };
        if let Some(d) = digest
            && !is_digest(d)
        {
            return bad("the digest is not algorithm:hex (e.g. sha256: and 64 hex digits)");
        }
        let slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if slash.is_none_or(|s| colon > s) => {
                (&name_tag[..colon], Some(&name_tag[colon + 1..]))
            }
            _ => (name_tag, None),
        };
        if let Some(t) = tag
            && !is_tag(t)
        {
            return bad("the tag must be 1 to 128 letters, digits, '_', '.' or '-'");
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, rest)
            }
            _ => (DOCKER_HUB, name),
        };
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return bad("the registry is not a host name");
        }
        if path.len() > 255 {
            return bad("the name is longer than 255 characters");
        }
        if let Some(component) = path.split('/').find(|c| !is_path_component(c)) {
            return bad(&format!(
                "{component:?} is not a lowercase repository name component"
            ));
        }
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
            other => other,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// What the registry is asked for: the digest when pinned, else the tag (`latest` when
    /// none is written).
    pub(super) fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether it floats on `latest`: no digest, and the tag `latest` or none.
    pub(super) fn is_latest(&self) -> bool {
        self.digest.is_none() && self.tag.as_deref().is_none_or(|t| t == "latest")
    }

    /// Whether it is pulled from Docker Hub.
    pub(super) fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The ECR registry it lives in, if any.
    pub(super) fn ecr(&self) -> Option<EcrRegistry> {
        EcrRegistry::parse(&self.registry)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    let hex_ok = if algorithm == "sha256" {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    } else {
        hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
    };
    algorithm_ok && hex_ok
}

fn is_tag(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &c[start..i];
        if !(separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|s| s == b'-'))
        {
            return false;
        }
    }
    true
}

/// An ECR registry, from its host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EcrRegistry {
    /// The AWS account, the registry id of the API.
    pub(super) account: String,
    /// The region.
    pub(super) region: String,
    /// `aws`, or `aws-cn` for the China regions.
    pub(super) partition: &'static str,
}

impl EcrRegistry {
    /// `{account}.dkr.ecr[-fips].{region}.amazonaws.com[.cn]`, or the dual-stack
    /// `{account}.dkr-ecr.{region}.on.aws`.
    fn parse(host: &str) -> Option<EcrRegistry> {
        let parts: Vec<&str> = host.split('.').collect();
        let account = *parts.first()?;
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (region, partition) = match parts.as_slice() {
            [_, "dkr", "ecr" | "ecr-fips", region, "amazonaws", "com"] => (*region, "aws"),
            [_, "dkr", "ecr", region, "amazonaws", "com", "cn"] => (*region, "aws-cn"),
            [_, "dkr-ecr", region, "on", "aws"] => (*region, "aws"),
            _ => return None,
        };
        Some(EcrRegistry {
            account: account.to_owned(),
            region: region.to_owned(),
            partition,
        })
    }

    /// The ARN of one of its repositories, for IAM.
    pub(super) fn repository_arn(&self, repository: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{repository}",
            self.partition, self.region, self.account
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_references_as_containerd_resolves_them() {
        for (raw, registry, repository, tag, digest) in [
            ("nginx", "docker.io", "library/nginx", None, None),
            (
                "nginx:1.27",
                "docker.io",
                "library/nginx",
                Some("1.27"),
                None,
            ),
            (
                "bitnami/postgresql:16.4.0",
                "docker.io",
                "bitnami/postgresql",
                Some("16.4.0"),
                None,
            ),
            (
                "docker.io/grafana/grafana:11.3.0",
                "docker.io",
                "grafana/grafana",
                Some("11.3.0"),
                None,
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io",
                "library/busybox",
                None,
                None,
            ),
            (
                "quay.io/prometheus/prometheus:v3.0.1",
                "quay.io",
                "prometheus/prometheus",
                Some("v3.0.1"),
                None,
            ),
            (
                "localhost:5000/app:dev",
                "localhost:5000",
                "app",
                Some("dev"),
                None,
            ),
            (
                "127.0.0.1:5000/team/app",
                "127.0.0.1:5000",
                "team/app",
                None,
                None,
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "backstage",
                Some("1.4.2"),
                None,
            ),
            (
                "ghcr.io/org/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "ghcr.io",
                "org/app",
                Some("1"),
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
            (
                "a__b/c-d--e.f_g",
                "docker.io",
                "a__b/c-d--e.f_g",
                None,
                None,
            ),
        ] {
            let r = ImageRef::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (registry, repository, tag, digest),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_malformed_references_naming_the_problem() {
        for (raw, needle) in [
            ("", "empty"),
            ("Nginx:1", "lowercase"),
            ("nginx:", "tag"),
            ("nginx:-x", "tag"),
            ("nginx@sha256:abc", "digest"),
            ("nginx:1 ", "whitespace"),
            ("ghcr.io//app", "lowercase"),
            ("ghcr.io/app..x", "lowercase"),
            ("ghcr.io/-app", "lowercase"),
        ] {
            let e = ImageRef::parse(raw).expect_err(raw);
            assert!(e.contains(needle), "{raw:?}: {e}");
        }
    }

    #[test]
    fn knows_latest_docker_hub_and_ecr() {
        let r = |s: &str| ImageRef::parse(s).expect("parses");
        assert!(r("nginx").is_latest());
        assert!(r("nginx:latest").is_latest());
        assert!(!r("nginx:1.27").is_latest());
        assert!(
            !r("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
                .is_latest()
        );
        assert!(r("nginx").is_docker_hub());
        assert!(!r("quay.io/a/b").is_docker_hub());
        assert_eq!(r("nginx").to_string(), "docker.io/library/nginx");
        assert_eq!(r("nginx").reference(), "latest");
        let ecr = r("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/backstage:1").ecr();
        assert_eq!(
            ecr,
            Some(EcrRegistry {
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                partition: "aws"
            })
        );
        assert_eq!(
            ecr.expect("ecr").repository_arn("team/backstage"),
            "arn:aws:ecr:eu-west-1:123456789012:repository/team/backstage"
        );
        assert_eq!(
            r("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a:1")
                .ecr()
                .map(|e| e.partition),
            Some("aws-cn")
        );
        assert_eq!(
            r("123456789012.dkr-ecr.us-east-1.on.aws/a:1")
                .ecr()
                .map(|e| e.region),
            Some("us-east-1".to_owned())
        );
        assert_eq!(r("public.ecr.aws/eks/coredns:v1").ecr(), None);
        assert_eq!(r("12345.dkr.ecr.eu-west-1.amazonaws.com/a:1").ecr(), None);
    }
}
