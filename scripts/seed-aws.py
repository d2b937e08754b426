"""Seeds moto with what Terraform and ExternalDNS leave in AWS for the demo's dev cluster: the
base domain's public hosted zone with the records each cluster's ExternalDNS owns, in the older
(same-name TXT) and newer ('a-' prefixed TXT) registry formats; and IRSA: the EKS cluster
goldenpath-dev, its OIDC issuer registered in IAM, and each controller's role trusting exactly
its ServiceAccount; and what CI pushed to ECR: kong's image as a multi-architecture OCI index."""
import hashlib
import json
import sys

import boto3

endpoint = sys.argv[1]


def client(service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    )


route53 = client("route53")
zone = route53.create_hosted_zone(Name="goldenpathidp.io", CallerReference="demo")["HostedZone"]["Id"]


def owned(host, owner, prefixed):
    txt = ("a-" if prefixed else "") + host
    value = f'"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/platform/{host.split(".")[0]}"'
    return [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": txt, "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": value}]}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": host, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "10.0.12.34"}]}},
    ]


build = "b-26-01-23-01.dev.goldenpathidp.io"
changes = (
    owned(f"argocd.{build}", "goldenpath-dev-26-01-23-01", True)
    + owned(f"grafana.{build}", "goldenpath-dev-26-01-23-01", False)
    + owned("backstage.dev.goldenpathidp.io", "goldenpath-dev", True)
)
route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})

eks = client("eks")
iam = client("iam")
cluster = eks.create_cluster(
    name="goldenpath-dev",
    roleArn="arn:aws:iam::123456789012:role/goldenpath-dev-cluster",
    resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d"]},
)["cluster"]
issuer = cluster["identity"]["oidc"]["issuer"]
host = issuer.removeprefix("https://")
provider = iam.create_open_id_connect_provider(
    Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
)["OpenIDConnectProviderArn"]
for namespace, name in [
    ("external-secrets", "external-secrets"),
    ("external-dns", "external-dns"),
    ("kube-system", "cluster-autoscaler"),
    ("kube-system", "aws-load-balancer-controller"),
    ("kube-system", "ebs-csi-controller-sa"),
]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{name}",
                f"{host}:aud": "sts.amazonaws.com",
            }},
        }],
    }
    iam.create_role(RoleName=f"goldenpath-dev-{name}", AssumeRolePolicyDocument=json.dumps(trust))

# kong's image: an OCI index naming a manifest per architecture (the index is all the check
# reads for a multi-architecture image).
ecr = client("ecr")
ecr.create_repository(repositoryName="goldenpath/kong")
entries = []
for arch in ["amd64", "arm64"]:
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [],
    })
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    ecr.put_image(repositoryName="goldenpath/kong", imageManifest=manifest,
                  imageManifestMediaType="application/vnd.oci.image.manifest.v1+json", imageDigest=digest)
    entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                    "size": len(manifest), "platform": {"architecture": arch, "os": "linux"}})
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
ecr.put_image(repositoryName="goldenpath/kong", imageManifest=index,
              imageManifestMediaType="application/vnd.oci.image.index.v1+json", imageTag="3.9.1")
