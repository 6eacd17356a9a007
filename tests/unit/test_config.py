from __future__ import annotations

from pathlib import Path

import pytest

from worker.cli import build_parser
from worker.config import SETTINGS, Settings, markdown_table, redact_url
from worker.dev.run import _banner
from worker.errors import ConfigError


def test_defaults_are_the_documented_contract() -> None:
    settings = Settings.from_mapping({})
    assert settings.topic_inbound == "mo.inbound"
    assert settings.topic_changes == "blocklist.changes"
    assert settings.topic_replies == "optout.replies"
    assert settings.topic_dead_letter == "mo.inbound.dlq"
    assert settings.group_id == "optout-classifier"
    assert settings.projector_group_id == "optout-projector"
    assert settings.metrics_port is None
    assert settings.database_url == ""


def test_batch_size_auto_is_bigger_for_an_exactly_once_classifier_and_a_number_is_kept() -> None:
    auto = Settings.from_mapping({})
    assert (auto.batch_records(), auto.batch_records(exactly_once=True)) == (5000, 20_000)
    fixed = Settings.from_mapping({"OPTOUT_BATCH_MAX_RECORDS": "300"})
    assert (fixed.batch_records(), fixed.batch_records(exactly_once=True)) == (300, 300)
    assert Settings.from_mapping({"OPTOUT_BATCH_MAX_RECORDS": "AUTO"}).batch_records() == 5000
    with pytest.raises(ConfigError, match=r"OPTOUT_BATCH_MAX_RECORDS.*auto or a whole number >= 1"):
        Settings.from_mapping({"OPTOUT_BATCH_MAX_RECORDS": "0"})


def test_the_produced_batch_size_is_a_megabyte_unless_lowered() -> None:
    assert Settings.from_mapping({}).produce_batch_bytes == 1_000_000  # under message.max.bytes' 1,048,588
    assert Settings.from_mapping({"OPTOUT_PRODUCE_BATCH_BYTES": "262144"}).produce_batch_bytes == 262_144


def test_flag_beats_environment_beats_default() -> None:
    env = {"OPTOUT_TOPIC_INBOUND": "from-env", "OPTOUT_GROUP_ID": "env-group"}
    settings = Settings.from_mapping(env, {"topic_inbound": "from-flag"})
    assert settings.topic_inbound == "from-flag"
    assert settings.group_id == "env-group"
    assert settings.metrics_port is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPTOUT_KAFKA_BOOTSTRAP": "no port here"}, "OPTOUT_KAFKA_BOOTSTRAP"),
        ({"OPTOUT_DATABASE_URL": "mysql://x"}, "OPTOUT_DATABASE_URL"),
        ({"OPTOUT_METRICS_PORT": "70000"}, "OPTOUT_METRICS_PORT"),
        ({"OPTOUT_METRICS_PORT": "abc"}, "OPTOUT_METRICS_PORT"),
        ({"OPTOUT_PARTITIONS": "0"}, "OPTOUT_PARTITIONS"),
        ({"OPTOUT_PRODUCE_BATCH_BYTES": "2000000"}, "OPTOUT_PRODUCE_BATCH_BYTES"),
        ({"OPTOUT_PRODUCE_BATCH_BYTES": "512"}, "OPTOUT_PRODUCE_BATCH_BYTES"),
        ({"OPTOUT_TOPIC_CHANGES": "has space"}, "OPTOUT_TOPIC_CHANGES"),
        ({"OPTOUT_RULES": "/does/not/exist.json"}, "OPTOUT_RULES"),
        ({"OPTOUT_LOG_LEVEL": "LOUD"}, "OPTOUT_LOG_LEVEL"),
        ({"OPTOUT_TOPIC_REPLIES": "mo.inbound"}, "topics must be different"),
        ({"OPTOUT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "OPTOUT_KAFKA_SASL_USERNAME"),
    ],
)
def test_wrong_values_fail_with_one_line_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(env)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_secrets_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"OPTOUT_METRICS_PORT": "x"}, {})
    assert "'x'" in str(caught.value)
    secrets = {setting.env for setting in SETTINGS if setting.secret}
    assert secrets == {
        "OPTOUT_KAFKA_SASL_PASSWORD",
        "OPTOUT_KAFKA_SSL_KEY_PASSWORD",
        "OPTOUT_SNAPSHOT_TOKEN",
        "OPTOUT_LINK_SECRET",
    }


def test_tls_key_password_is_masked_and_tls_files_need_tls(tmp_path: Path) -> None:
    certificate = tmp_path / "c.pem"
    certificate.write_text("PEM")  # the files must exist when TLS is used
    settings = Settings.from_mapping(
        {
            "OPTOUT_KAFKA_SECURITY_PROTOCOL": "SSL",
            "OPTOUT_KAFKA_SSL_CERTFILE": str(certificate),
            "OPTOUT_KAFKA_SSL_KEY_PASSWORD": "hunter2",
        }
    )
    assert "hunter2" not in repr(settings)
    assert "ssl_key_password=***" in repr(settings)
    with pytest.raises(ConfigError, match="OPTOUT_KAFKA_SSL_CERTFILE"):
        Settings.from_mapping({"OPTOUT_KAFKA_SSL_KEYFILE": "/k.pem"})
    with pytest.raises(ConfigError, match="does not use TLS"):
        Settings.from_mapping({"OPTOUT_KAFKA_SSL_CAFILE": "/ca.pem"})
    with pytest.raises(ConfigError, match="OPTOUT_DELIVERY"):
        Settings.from_mapping({"OPTOUT_DELIVERY": "twice"})


def test_multiple_bootstrap_servers_are_normalized() -> None:
    settings = Settings.from_mapping({"OPTOUT_KAFKA_BOOTSTRAP": " a:9092 , b:9093 "})
    assert settings.kafka_bootstrap == "a:9092,b:9093"


def test_every_setting_has_a_flag_and_a_readme_row(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["classifier", "--topic-inbound", "x", "--metrics-port", "0"])
    assert args.topic_inbound == "x"
    assert args.metrics_port == "0"
    table = markdown_table()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in table
        assert f"`{setting.env}`" in readme, f"README's configuration table lacks {setting.env}"
    # The whole table as generated, so a row edited by hand (three had drifted by stop 35) fails.
    assert table.strip() in readme, (
        "README's configuration table differs from worker.config.markdown_table(): paste its output "
        "(python -c 'from worker.config import markdown_table; print(markdown_table())')"
    )


def test_repr_masks_the_sasl_password_and_the_database_password() -> None:
    settings = Settings.from_mapping(
        {
            "OPTOUT_DATABASE_URL": "postgresql://optout:db-s3cret@db.example:5432/optout?password=q-s3cret",
            "OPTOUT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "OPTOUT_KAFKA_SASL_USERNAME": "optout",
            "OPTOUT_KAFKA_SASL_PASSWORD": "sasl-s3cret",
        }
    )
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}", repr([settings])):
        assert "s3cret" not in shown
        assert "postgresql://optout:***@db.example:5432/optout?password=***" in shown
        assert "sasl_password=***" in shown
        assert "sasl_username='optout'" in shown
    assert settings.sasl_password == "sasl-s3cret"  # masked when shown, not changed
    assert settings.database_url.startswith("postgresql://optout:db-s3cret@")


def test_repr_of_empty_secrets_says_they_are_empty() -> None:
    assert "sasl_password=''" in repr(Settings.from_mapping({}))
    assert "database_url=''" in repr(Settings.from_mapping({}))


def test_a_bad_database_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"OPTOUT_DATABASE_URL": "mysql://optout:db-s3cret@db.example/optout"})
    assert "OPTOUT_DATABASE_URL" in str(caught.value)
    assert "mysql://optout:***@db.example/optout" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("postgresql://u@h/d?sslmode=require&password=pw", "postgresql://u@h/d?sslmode=require&password=***"),
        ("postgresql://h/d?sslpassword=pw", "postgresql://h/d?sslpassword=***"),
        ("postgresql://postgres:@/postgres?host=/tmp/pg", "postgresql://postgres:***@/postgres?host=/tmp/pg"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("", ""),
        ("postgresql://u:pw@[::1/d", "<unparsable URL>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_dev_banner_masks_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_mapping(
        {"OPTOUT_DATABASE_URL": "postgresql://optout:db-s3cret@localhost/optout"}
    )
    _banner(settings, {"classifier": 9464, "projector": 9465}, None)
    err = capsys.readouterr().err
    assert "postgresql://optout:***@localhost/optout" in err
    assert "s3cret" not in err


def test_dev_takes_the_broker_as_a_choice() -> None:
    from worker.cli import build_parser

    assert build_parser().parse_args(["dev"]).broker == "tansu"
    assert build_parser().parse_args(["dev", "--broker", "kafka"]).broker == "kafka"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dev", "--broker", "redpanda"])


def test_input_formats_name_extra_topics_and_their_formats() -> None:
    settings = Settings.from_mapping({"OPTOUT_INPUT_FORMATS": " mo.infobip=infobip, mo.twilio = twilio ,"})
    assert settings.input_formats == (("mo.infobip", "infobip"), ("mo.twilio", "twilio"))
    assert settings.topics.inputs == settings.input_formats
    assert Settings.from_mapping({}).input_formats == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("mo.infobip", "'mo.infobip' is not topic=format"),
        ("mo.x=vonage", "'vonage' (for mo.x) is not a format"),
        ("bad topic=infobip", "is not topic=format"),
        ("a=infobip,a=twilio", "topic a is listed twice"),
        ("mo.inbound=infobip", "mo.inbound is the inbound topic (always canonical)"),
        ("blocklist.changes=canonical", "is an output topic"),
    ],
)
def test_bad_input_formats_are_one_line_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_mapping({"OPTOUT_INPUT_FORMATS": value})
    assert "OPTOUT_INPUT_FORMATS" in str(error.value)
    assert problem in str(error.value)
    assert "\n" not in str(error.value)
