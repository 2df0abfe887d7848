#!/usr/bin/env bash
# Fetches a real Apache Kafka broker as jars from Maven Central: org.apache.kafka:kafka_2.13
# (4.1.1) with its runtime dependencies, plus org.slf4j:slf4j-simple 1.7.36 so the broker logs
# (Kafka brings slf4j-api 1.7.36; slf4j-simple 2.x would fall back to a silent no-op logger).
# Maven resolves them through a generated `pom`-packaging POM; the jars are cached outside the
# work tree, keyed by version and by a hash of this recipe, and a warm cache is reused without
# calling Maven. Prints the directory holding the jars (for `java -cp 'DIR/*'`); progress goes
# to stderr. tests/brokers.py reads that directory from DUETIME_KAFKA_LIBS and pins the same
# version.
#   DUETIME_CACHE_DIR (default ~/.cache/duetime)
set -euo pipefail
version=4.1.1
recipe=$(sha256sum "$0" | cut -c1-12)
out="${DUETIME_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/duetime}/kafka/$version-$recipe"
if [ -d "$out/libs" ]; then
  echo "$out/libs"
  exit 0
fi
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$out.partial.XXXXXX")
trap 'rm -rf "$staging"' EXIT
cat >"$staging/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>duetime</groupId>
  <artifactId>duetime-kafka-broker</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>3.8.1</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
POM
echo "fetch-kafka: resolving kafka_2.13:$version and its runtime dependencies with Maven" >&2
# Maven 3.8's -q still prints bare colour resets: keep its output, show it only on failure.
if ! (cd "$staging" && mvn -B -q dependency:copy-dependencies \
  -DoutputDirectory="$staging/libs" -DincludeScope=runtime) >"$staging/mvn.log" 2>&1; then
  sed 's/\x1b\[[0-9;]*m//g' "$staging/mvn.log" >&2
  exit 1
fi
count=$(find "$staging/libs" -name '*.jar' | wc -l)
ls "$staging/libs"/kafka_2.13-"$version".jar "$staging"/libs/slf4j-simple-*.jar >/dev/null
echo "fetch-kafka: $count jars, $(du -sh "$staging/libs" | cut -f1)" >&2
rm "$staging/pom.xml" "$staging/mvn.log"
# One rename makes the cache entry appear whole; a concurrent run that got there first wins.
if ! mv -T "$staging" "$out" 2>/dev/null; then
  [ -d "$out/libs" ] || { echo "fetch-kafka: cannot create $out" >&2; exit 1; }
fi
trap - EXIT
rm -rf "$staging"
echo "$out/libs"
