# The Kubricks project image: pipeline steps, Spark drivers and executors, the MLflow server
# and the Bento runtime. Python packages come from requirements.lock, installed exactly as
# scripts/bootstrap.sh installs them (uv, then the project itself with --no-deps).
FROM python:3.11.14-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Java for Spark; curl only to fetch the s3a jars below. Debian's security updates must keep
# flowing, so package versions follow the pinned base image's release, not exact pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends openjdk-17-jre-headless curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# One user for Kubricks (pipeline steps, serving, MLflow: uid 1000) and Spark's usual uid 185,
# both able to resolve their names (Hadoop's login code fails on a uid without one).
RUN groupadd --gid 1000 kubricks \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin kubricks \
    && useradd --uid 185 --gid 1000 --create-home --shell /usr/sbin/nologin spark

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_SYSTEM_PYTHON=1 \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark

COPY requirements.lock ./
RUN pip install --no-cache-dir "uv==0.13.8" \
    && uv pip install --no-cache -r requirements.lock

# Spark reads s3a:// through hadoop-aws and the AWS SDK v2 bundle (and, from Hadoop 3.5, the
# S3 analytics accelerator hadoop-aws depends on at run time), which pyspark does not
# ship. They are fetched here, on the machine that builds the image: hadoop-aws at the same
# version as pyspark's bundled Hadoop client, the SDK at the version that Hadoop release was
# built with (read from its POM unless given). Each jar is checked against Maven Central's
# published SHA-1 and, when the *_SHA256 build args are set, against that pin as well; the
# SHA-256 of each jar is printed so it can be pinned (see infra/README.md).
ARG MAVEN_REPO=https://repo1.maven.org/maven2
ARG HADOOP_AWS_VERSION=3.5.0
ARG AWS_SDK_BUNDLE_VERSION=
ARG HADOOP_AWS_SHA256=
ARG AWS_SDK_BUNDLE_SHA256=
RUN test -f "${SPARK_HOME}/jars/hadoop-client-api-${HADOOP_AWS_VERSION}.jar" \
        || { echo "hadoop-aws ${HADOOP_AWS_VERSION} does not match pyspark's Hadoop" >&2; exit 1; } \
    && sdk="${AWS_SDK_BUNDLE_VERSION}" \
    && if [ -z "$sdk" ]; then \
         sdk="$(curl -fsSL "${MAVEN_REPO}/org/apache/hadoop/hadoop-project/${HADOOP_AWS_VERSION}/hadoop-project-${HADOOP_AWS_VERSION}.pom" \
                | sed -n 's:.*<aws-java-sdk-v2.version>\(.*\)</aws-java-sdk-v2.version>.*:\1:p' | head -n 1)"; \
         test -n "$sdk" || { echo "set --build-arg AWS_SDK_BUNDLE_VERSION" >&2; exit 1; }; \
       fi \
    && aal="$(curl -fsSL "${MAVEN_REPO}/org/apache/hadoop/hadoop-project/${HADOOP_AWS_VERSION}/hadoop-project-${HADOOP_AWS_VERSION}.pom" \
              | sed -n 's:.*<amazon-s3-analyticsaccelerator-s3.version>\(.*\)</amazon-s3-analyticsaccelerator-s3.version>.*:\1:p' | head -n 1)" \
    && fetch() { \
         url="$1"; pin="$2"; out="${SPARK_HOME}/jars/$(basename "$1")"; \
         curl -fsSL --retry 3 -o "$out" "$url"; \
         echo "$(curl -fsSL "${url}.sha1" | cut -c1-40)  $out" | sha1sum --check --quiet -; \
         if [ -n "$pin" ]; then echo "$pin  $out" | sha256sum --check --quiet -; fi; \
         sha256sum "$out"; \
       } \
    && fetch "${MAVEN_REPO}/org/apache/hadoop/hadoop-aws/${HADOOP_AWS_VERSION}/hadoop-aws-${HADOOP_AWS_VERSION}.jar" "${HADOOP_AWS_SHA256}" \
    && fetch "${MAVEN_REPO}/software/amazon/awssdk/bundle/${sdk}/bundle-${sdk}.jar" "${AWS_SDK_BUNDLE_SHA256}" \
    && if [ -n "$aal" ]; then \
         fetch "${MAVEN_REPO}/software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/${aal}/analyticsaccelerator-s3-${aal}.jar" ""; \
       fi

COPY pyproject.toml README.md ./
COPY kubricks ./kubricks
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
COPY demo ./demo
COPY usecases ./usecases
RUN uv pip install --no-cache --no-deps . \
    && python -c "import kubricks, components, pipelines, serving, pyspark, mlflow, psycopg"

COPY --chmod=0755 infra/docker/entrypoint.sh /usr/local/bin/kubricks-entrypoint

USER 1000:1000
# Models are data: MLflow never unpickles one in any process of this image.
ENV HOME=/home/kubricks \
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false
EXPOSE 3000 5000
ENTRYPOINT ["/usr/local/bin/kubricks-entrypoint"]
CMD ["kubricks", "--help"]
