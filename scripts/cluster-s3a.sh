#!/usr/bin/env bash
# The acceptance's s3a step: hadoop-aws and the AWS SDK v2 bundle from Maven Central at the
# versions the Dockerfile uses (the SDK's from that Hadoop release's hadoop-project POM, as the
# Dockerfile reads it), then tests/s3/test_s3a.py with KUBRICKS_SPARK_S3_TRANSPORT's s3a against
# SeaweedFS: ingest, batch scoring and the two-writer commit race.
#
#   bash scripts/cluster-s3a.sh fetch JARS_DIR     (outside the namespace: Maven is remote)
#   bash scripts/cluster-s3a.sh run JARS_DIR       (inside: loopback only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: cluster-s3a.sh fetch|run JARS_DIR}
jars=${2:?usage: cluster-s3a.sh fetch|run JARS_DIR}
say() { printf '[s3a] %s\n' "$*" >&2; }
hadoop=$(sed -n 's/^ARG HADOOP_AWS_VERSION=\([0-9.]*\)$/\1/p' "$root/Dockerfile")
[ -n "$hadoop" ] || { say "FAILED: no ARG HADOOP_AWS_VERSION in the Dockerfile"; exit 1; }

if [ "$mode" = fetch ]; then
  mkdir -p "$jars"
  if ls "$jars"/hadoop-aws-"$hadoop".jar "$jars"/bundle-*.jar "$jars"/analyticsaccelerator-s3-*.jar >/dev/null 2>&1; then
    say "jars cached in $jars"
    exit 0
  fi
  m2=$(mktemp -d)
  mvn() { command mvn -q -B -Dmaven.repo.local="$m2" "$@"; }
  mvn dependency:copy -Dartifact="org.apache.hadoop:hadoop-project:$hadoop:pom" -DoutputDirectory="$m2/poms"
  sdk=$(sed -n 's:.*<aws-java-sdk-v2.version>\(.*\)</aws-java-sdk-v2.version>.*:\1:p' \
    "$m2/poms/hadoop-project-$hadoop.pom" | head -n 1)
  [ -n "$sdk" ] || { say "FAILED: no aws-java-sdk-v2.version in hadoop-project $hadoop"; exit 1; }
  # hadoop-aws 3.5 needs the S3 analytics accelerator at run time (a compile dependency of it)
  aal=$(sed -n 's:.*<amazon-s3-analyticsaccelerator-s3.version>\(.*\)</amazon-s3-analyticsaccelerator-s3.version>.*:\1:p' \
    "$m2/poms/hadoop-project-$hadoop.pom" | head -n 1)
  [ -n "$aal" ] || { say "FAILED: no amazon-s3-analyticsaccelerator-s3.version in hadoop-project $hadoop"; exit 1; }
  # Maven checks each file against the checksum published beside it
  mvn dependency:copy -Dartifact="org.apache.hadoop:hadoop-aws:$hadoop" -DoutputDirectory="$jars"
  mvn dependency:copy -Dartifact="software.amazon.awssdk:bundle:$sdk" -DoutputDirectory="$jars"
  mvn dependency:copy -Dartifact="software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:$aal" \
    -DoutputDirectory="$jars"
  rm -rf "$m2"
  (cd "$jars" && sha256sum ./*.jar) >&2
  say "fetched hadoop-aws $hadoop, the AWS SDK v2 bundle $sdk and analyticsaccelerator-s3 $aal"
  exit 0
fi

list=$(ls "$jars"/hadoop-aws-"$hadoop".jar "$jars"/bundle-*.jar "$jars"/analyticsaccelerator-s3-*.jar | paste -sd, -)
say "tests/s3/test_s3a.py with $list"
cd "$root"
KUBRICKS_S3A_JARS="$list" .venv/bin/python -m pytest tests/s3/test_s3a.py -q -p no:cacheprovider \
  -o addopts="" -m "slow" -x
