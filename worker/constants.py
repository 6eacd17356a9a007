"""Names and limits shared by every part of the worker.

Topic and group names are contracts with send services and operators: change them only with a
migration plan, never casually.
"""

from __future__ import annotations

from typing import Final

TOPIC_INBOUND: Final = "mo.inbound"
TOPIC_CHANGES: Final = "blocklist.changes"
TOPIC_REPLIES: Final = "optout.replies"
TOPIC_DEAD_LETTER: Final = "mo.inbound.dlq"
TOPIC_REVIEW: Final = "optout.review"

GROUP_CLASSIFIER: Final = "optout-classifier"
GROUP_PROJECTOR: Final = "optout-projector"
#: The webhook dispatcher: its consumer group on the change topic, and where it gives up deliveries.
GROUP_WEBHOOKS: Final = "optout-webhooks"
TOPIC_WEBHOOK_DEAD_LETTER: Final = "optout.webhooks.dlq"

KAFKA_BOOTSTRAP: Final = "127.0.0.1:9092"
METRICS_PORT_CLASSIFIER: Final = 9464
METRICS_PORT_PROJECTOR: Final = 9465
METRICS_PORT_DISPATCHER: Final = 9466
#: The API's own port serves /v1 (OPTOUT_API_PORT); its metrics and /livez are here, like the workers'.
METRICS_PORT_API: Final = 9467
DATA_DIR: Final = ".optout"

#: The hourly sync snapshot: where, how often (seconds) and how many to keep (a day's worth).
SNAPSHOT_DIR: Final = ".optout/snapshots"
SNAPSHOT_INTERVAL: Final = 3600
SNAPSHOT_KEEP: Final = 24

#: Inbound text over this many UTF-8 bytes is dead-lettered: no keyword MO is that long, and
#: classifying megabyte payloads would stall the batch.
MAX_TEXT_BYTES: Final = 64 * 1024

#: An operator's note on a manual or imported change: a sentence or two, not a document.
MAX_NOTE_CHARS: Final = 1000

#: The channel value of a block that covers every channel.
ALL_CHANNELS: Final = "*"

#: Schema identifiers stamped on every event we emit, so consumers can route on version.
SCHEMA_CHANGE: Final = "optout.blocklist-change.v1"
SCHEMA_REPLY: Final = "optout.reply-request.v1"
SCHEMA_DEAD_LETTER: Final = "optout.dead-letter.v1"
SCHEMA_REVIEW: Final = "optout.review-request.v1"
#: Why a message goes to the review topic (worker.classify.decide.Doubt.reason).
REVIEW_REASONS: Final = ("fuzzy_guarded", "negated_phrase", "keyword_in_text")

#: Classifier batching: one getmany() batch is decoded, classified, produced and committed as a unit.
MAX_BATCH_RECORDS: Final = 5000
#: The same for an exactly-once classifier, where a batch is also one transaction per partition: its
#: round trips (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) were most of a batch's
#: time on Apache Kafka. A backlog is then taken in bigger bites; at a steady rate a batch is what
#: arrived meanwhile either way. Campaign mix, 200,000 MOs, Apache Kafka on the 2-core box, two runs
#: each: 48-66k msgs/s at 5000, 74-84k at 20000, 83-92k at 50000 (``python -m bench.peers --broker
#: kafka``, the next batch classified while the last commits); 20000 keeps a STOP storm's batch
#: output near 20 MB. With a cycle per partition (stop 28), two alternated rounds, 10000 against
#: 20000: normal 205-234k vs 261-262k msgs/s, campaign 196-198k vs 220-221k, storm 81-84k vs
#: 80-89k, the storm's peak RSS 258-266 vs 318-323 MB. ``OPTOUT_BATCH_MAX_RECORDS`` trades one
#: for the other.
MAX_TRANSACTION_BATCH_RECORDS: Final = 20_000
#: How soon an exactly-once producer asks again to add a partition to its new transaction when the
#: broker answers CONCURRENT_TRANSACTIONS (its last commit's markers are still being written): the
#: first wait, doubled at each further such answer up to the most (aiokafka's own fixed wait). Why,
#: and what each measured: :mod:`worker.stream.txn_retry`.
TRANSACTION_RETRY_FIRST_SECONDS: Final = 0.001
TRANSACTION_RETRY_MOST_SECONDS: Final = 0.02
POLL_TIMEOUT_MS: Final = 200
#: Exactly-once: the least time between the starts of one input partition's transactions (ms);
#: 0, the default: the next one starts as soon as the last one commits, the lowest latency. Each
#: transaction costs the broker the same whatever it holds (five requests, its markers, the
#: transaction log's records), and back to back they run as often as the round trips allow,
#: however little traffic there is: on 2 shared cores Apache Kafka used 1.0-1.1 cores at 5,000,
#: 10,000 and 20,000 MO/s alike (``python -m bench.latency --broker kafka``, stop 35). A floor
#: trades latency for broker work, as Kafka Streams' ``commit.interval.ms`` (100 ms under
#: exactly-once) does; README, "Delivery guarantees", has what it measured.
TRANSACTION_INTERVAL_MS: Final = 0
#: The largest floor accepted: a partition waits at most this long before its next transaction,
#: and so may a stop or a rebalance.
MAX_TRANSACTION_INTERVAL_MS: Final = 1000
#: At-least-once: acked offsets are committed at most this often (ms), not after every batch. At a
#: steady 20,000 MO/s a batch takes a few ms and its commit a broker round trip; committing every
#: batch put that round trip in every cycle (``python -m bench.latency --broker kafka --delivery
#: at-least-once``, MO -> change event: p50 8.9-9.1 ms committing every batch, 4.8-6.9 ms at
#: 100 ms; the p99 is set by this shared machine's hiccups more than by either). A crash
#: reprocesses at most this much more input, with the same event ids; a rebalance or a stop
#: commits what is pending first.
COMMIT_INTERVAL_MS: Final = 100
#: The classifier's fetches of its input wait until this many bytes are there, or
#: FETCH_MAX_WAIT_MS have passed. At a steady rate every loop cycle pays a fetch, a produce and
#: their acks whatever its size; returning at the first byte made cycles of ~60 records. Measured
#: (``python -m bench.latency --broker kafka --delivery at-least-once``, campaign mix, 20,000 MO/s,
#: 60 s runs): at 1 byte 28.1-28.6 CPU-s per million MOs, MO -> change event p50 4.6-5.9 ms, p99
#: 23-68 ms (five runs); at 64 KiB and 10 ms 16.4-19.6 CPU-s/M, p50 10.5-11.9 ms, p99 23.2-35.6
#: ms (six runs); 32 KiB and 5 ms: 24.8, 8.4 ms, 45.6 ms (one run). A backlog is unaffected (its
#: fetches fill at once); an idle classifier sends a fetch every FETCH_MAX_WAIT_MS.
FETCH_MIN_BYTES: Final = 64 * 1024
FETCH_MAX_WAIT_MS: Final = 10
#: Largest record batch a producer writes (bytes): aiokafka sends one produce request per broker at
#: a time, holding one batch per partition, so a STOP storm's output (about 1 KB of change and
#: reply events per MO: 5 MB a 5,000-MO batch, over 8 partitions) took three requests in a row at
#: 256 KB and one or two at 1 MB. Tansu, 2 cores, ``python -m bench.peers --contenders classifier
#: --mixes storm``, three alternated rounds: 94-104k -> 104-112k msgs/s. Kept under every broker's
#: default limit on a batch (Apache Kafka's ``message.max.bytes`` 1,048,588; MSK and Redpanda
#: 1 MiB); ``OPTOUT_PRODUCE_BATCH_BYTES`` lowers it for a topic whose ``max.message.bytes`` is lower.
PRODUCE_BATCH_BYTES: Final = 1_000_000
#: The most a batch may be: aiokafka's request limit (``max_request_size``, 1 MiB).
MAX_PRODUCE_BATCH_BYTES: Final = 1024 * 1024
#: Records the classifier classifies between two turns of the event loop. Classifying a 5,000-record
#: partition batch at once (25-40 ms of a STOP storm) kept aiokafka's sender from sending the last
#: batch's output until it was done, and from reading the broker's answer: the loop then waited for
#: the whole produce round trip after classifying (traced: 15 ms a batch on average, 0.6 s of a 2 s
#: run). Yielding every 1,000 records puts the round trip under the classification. Tansu, 2 cores,
#: STOP storm, with 1 MB batches, three alternated rounds: 104-112k -> 117-118k msgs/s; 500 and 250
#: records were no faster and cost more CPU (8.7-9.3 CPU-s per million MOs at 250, 8.1-8.4 at 1,000).
CLASSIFY_CHUNK_RECORDS: Final = 1000

#: Identifier fields (message id, addresses, account ids, channel, and every text field of a change
#: event) over this many UTF-8 bytes are refused at decode time. They become Kafka keys and columns
#: of a Postgres primary key, whose btree entries must stay under 2704 bytes: five key columns of
#: 256 bytes stay well inside that, and no real address or id is near it.
MAX_FIELD_BYTES: Final = 256

#: A dead letter carries at most this much of the rejected record's value and key (their full
#: length and sha256 are kept beside them), so it fits under any producer's and broker's message
#: size limit (Kafka's default is 1 MB) whatever was rejected: 256 KiB is about 342 KiB of base64,
#: and keeps whole every inbound record that was refused for a reason other than its size.
MAX_DEAD_LETTER_VALUE_BYTES: Final = 256 * 1024
MAX_DEAD_LETTER_KEY_BYTES: Final = 1024
#: Longer error details are cut: a detail quotes at most a short piece of the bad input.
MAX_DEAD_LETTER_DETAIL_CHARS: Final = 1000

#: Where the projector's HTTP port serves snapshots (``GET /snapshots/latest``), and where a send
#: service fetches them from: one constant for the server and the client.
SNAPSHOT_URL_PREFIX: Final = "/snapshots"
