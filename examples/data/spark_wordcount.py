"""A Spark job: counts the words of a generated text with a Spark DataFrame, on the
`local[N]` master mlctl starts (locally) or the SparkApplication's executors (on Kubernetes).

    spark-submit spark_wordcount.py [--lines N]
"""

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

WORDS = ["gpu", "model", "train", "serve", "data", "spark", "dask", "pipeline"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines of text")
    args = parser.parse_args()
    spark = SparkSession.builder.appName("wordcount").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    lines = spark.range(args.lines).select(
        F.concat_ws(" ", *[F.element_at(F.array(*[F.lit(w) for w in WORDS]), ((F.col("id") + i) % len(WORDS) + 1).cast("int")) for i in range(3)]).alias("line")
    )
    counts = lines.select(F.explode(F.split("line", " ")).alias("word")).groupBy("word").count()
    rows = {r["word"]: r["count"] for r in counts.collect()}
    total = sum(rows.values())
    print(f"{len(rows)} distinct words, {total} words in {args.lines} lines (master {spark.sparkContext.master})")
    spark.stop()
    if total != 3 * args.lines or set(rows) != set(WORDS):
        sys.exit(f"error: unexpected counts {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
