"""Seeds moto's Route53 with the platform's hosted zone as ExternalDNS leaves it for the demo:
the base domain's public zone, and the records each cluster's ExternalDNS owns, in the older
(same-name TXT) and newer ('a-' prefixed TXT) registry formats."""
import sys

import boto3

endpoint = sys.argv[1]
route53 = boto3.client(
    "route53",
    endpoint_url=endpoint,
    region_name="eu-west-1",
    aws_access_key_id="demo",
    aws_secret_access_key="demo",
)
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
