# moto's server, started as its `moto_server` script starts it, with its IAM enforcement made
# to decide as IAM does for the calls preflight makes. Nothing here changes a request while
# IAM is not enforced (moto's default); it only changes what moto authorizes once a test has
# turned enforcement on (`Moto::enforce_iam`).
#
# 1. moto computes the signature of a GET (Route53's ListHostedZonesByName and
#    ListResourceRecordSets, EKS's DescribeCluster) over the request's parsed parameters, which
#    stand for the form body of a query-protocol POST, where SigV4 signs the empty body: it
#    refused every such request with SignatureDoesNotMatch, whatever the caller's policy said.
# 2. moto matches a policy's Resource against the resource of the call only for IAM's role
#    operations and S3; for every other service it matches against "*", which a statement
#    naming an ARN never matches. The calls preflight makes get their resource's ARN here, as
#    IAM's documentation of each action names it.
# 3. moto turns a Resource pattern into a regular expression by replacing "*" only, so IAM's
#    single-character "?" (Secrets Manager's six-character suffix, "postgres-??????") became a
#    regex quantifier. Patterns are translated as IAM matches them instead.
import re
import sys

from moto.iam import access_control

_create = access_control.IAMRequestBase._create_aws_request


def _sign_the_empty_body(self):
    if self._method not in ("GET", "HEAD") or self._body:
        return _create(self)
    data, self._data = self._data, {}
    try:
        return _create(self)
    finally:
        self._data = data


access_control.IAMRequestBase._create_aws_request = _sign_the_empty_body


def _iam_match(pattern, string):
    translated = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    return re.match(f"^{translated}$", string)


access_control.IAMPolicyStatement._match = staticmethod(_iam_match)


def _arn(self, service, resource):
    return f"arn:aws:{service}:{self.region}:{self.current_account}:{resource}"


def _secrets_manager(self):
    if self._get_action() != "GetSecretValue":
        return "*"
    secret = self.backend.secrets.get(self._get_param("SecretId") or "")
    return secret.arn if secret is not None else "*"


def _ecr(self):
    if self._get_action() not in ("BatchGetImage", "GetDownloadUrlForLayer"):
        return "*"
    return _arn(self, "ecr", f"repository/{self._get_param('repositoryName')}")


def _rds(self):
    identifier = self._get_param("DBInstanceIdentifier")
    if self._get_action() != "DescribeDBInstances" or not identifier:
        return "*"
    return _arn(self, "rds", f"db:{identifier}")


def _eks(self):
    parts = self.path.strip("/").split("/")
    if self.method != "GET" or len(parts) != 2 or parts[0] != "clusters":
        return "*"
    return _arn(self, "eks", f"cluster/{parts[1]}")


def _route53(self):
    parts = self.path.strip("/").split("/")
    # /2013-04-01/hostedzone/{id}/rrset
    if len(parts) == 4 and parts[1] == "hostedzone" and parts[3] == "rrset":
        return f"arn:aws:route53:::hostedzone/{parts[2]}"
    return "*"


_iam_roles = None


def _iam(self):
    if self._get_action() == "GetOpenIDConnectProvider":
        return self._get_param("OpenIDConnectProviderArn") or "*"
    return _iam_roles(self)


def _install():
    global _iam_roles
    from moto.ecr.responses import ECRResponse
    from moto.eks.responses import EKSResponse
    from moto.iam.responses import IamResponse
    from moto.rds.responses import RDSResponse
    from moto.route53.responses import Route53
    from moto.secretsmanager.responses import SecretsManagerResponse

    SecretsManagerResponse._determine_resource = _secrets_manager
    ECRResponse._determine_resource = _ecr
    RDSResponse._determine_resource = _rds
    EKSResponse._determine_resource = _eks
    Route53._determine_resource = _route53
    _iam_roles = IamResponse._determine_resource
    IamResponse._determine_resource = _iam


_install()

from moto.server import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
