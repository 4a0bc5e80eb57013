"""A service of another team, in Python: produces CloudEvents the bus must handle, and
consumes the bus's events, with the official CloudEvents SDK and each broker's own client.

    peer.py produce --backend B [connection options]
        publishes two events of type `interop.event`: `py-structured-1` in structured mode and
        `py-binary-1` in binary mode (text data), then exits.
    peer.py consume --backend B --count N [connection options]
        prints `ready` once it will see what is published next, then one JSON line per event
        decoded (`{"attributes": {...}, "data": ...}`), and exits after N.

Encoding and decoding go through the SDK's binding for the broker where it has one (Kafka;
AMQP for RabbitMQ), its HTTP binding for NATS (the NATS binding uses the same `ce-` headers),
its Kafka binding's names for Redis Streams (the bus's documented convention), and the SDK's
event format with the attribute mapping of Google's Pub/Sub binding for Pub/Sub.
"""

import argparse
import base64
import json
import sys
import time

from cloudevents.core.bindings import amqp, http, kafka, rabbitmq
from dateutil.parser import isoparse
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

EVENT_TYPE = "interop.event"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
FORMAT = JSONFormat()
TIMEOUT = 60


def events():
    """The two events a produce run publishes."""
    structured = CloudEvent(
        attributes={
            "id": "py-structured-1",
            "source": "/python/peer",
            "type": EVENT_TYPE,
            "subject": "order-1",
            "tenantid": "acme",
            "traceparent": TRACEPARENT,
            "datacontenttype": "application/json",
        },
        data={"total": 12, "name": "Zoë"},
    )
    binary = CloudEvent(
        attributes={
            "id": "py-binary-1",
            "source": "/python/peer",
            "type": EVENT_TYPE,
            "subject": "note-1",
            "partitionkey": "p-7",
            "datacontenttype": "text/plain; charset=utf-8",
        },
        data="grüß dich ✓",
    )
    return structured, binary


def report(event):
    attributes = {}
    for name, value in event.get_attributes().items():
        attributes[name] = value.isoformat() if hasattr(value, "isoformat") else value
    data = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        data = {"base64": base64.b64encode(data).decode()}
    print(json.dumps({"attributes": attributes, "data": data}), flush=True)


def ready():
    print("ready", flush=True)


def pubsub_attributes(event):
    """Google's Pub/Sub binding, binary mode: `ce-{name}` attributes, `content-type`."""
    attributes = {}
    for name, value in event.get_attributes().items():
        if name == "datacontenttype":
            attributes["content-type"] = value
        else:
            text = value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)
            attributes[f"ce-{name}"] = text
    return attributes


def from_pubsub(data, attributes):
    content_type = attributes.get("content-type", "")
    if content_type.lower().startswith("application/cloudevents"):
        return FORMAT.read(None, data)
    names = {k[3:]: v for k, v in attributes.items() if k.startswith("ce-")}
    if "time" in names:
        names["time"] = isoparse(names["time"])
    if content_type:
        names["datacontenttype"] = content_type
    return CloudEvent(attributes=names, data=FORMAT.read_data(data, content_type or None))


# --- Redis Streams -------------------------------------------------------------------------


def redis_produce(args):
    import redis

    client = redis.Redis.from_url(args.url)
    structured, binary = events()
    for message in (kafka.to_structured(structured, FORMAT), kafka.to_binary(binary, FORMAT)):
        fields = {"payload": message.value}
        if message.key is not None:
            fields["key"] = message.key
        for name, value in message.headers.items():
            fields[f"h:{name}"] = value
        client.xadd(args.topic, fields)


def redis_consume(args):
    import redis

    client = redis.Redis.from_url(args.url)
    newest = client.xrevrange(args.topic, count=1)
    last = newest[0][0] if newest else "0-0"
    ready()
    seen = 0
    deadline = time.time() + TIMEOUT
    while seen < args.count and time.time() < deadline:
        for _, entries in client.xread({args.topic: last}, block=1000) or []:
            for entry_id, fields in entries:
                last = entry_id
                fields = {k.decode(): v for k, v in fields.items()}
                headers = {k[2:]: v for k, v in fields.items() if k.startswith("h:")}
                message = kafka.KafkaMessage(headers=headers, key=fields.get("key"), value=fields["payload"])
                report(kafka.from_kafka(message, FORMAT))
                seen += 1


# --- RabbitMQ ------------------------------------------------------------------------------


def rabbitmq_produce(args):
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.confirm_delivery()
    structured, binary = events()
    as_rabbitmq = rabbitmq.to_structured(structured, FORMAT)
    channel.basic_publish(
        args.exchange,
        args.topic,
        as_rabbitmq.body,
        pika.BasicProperties(content_type=as_rabbitmq.content_type, headers=as_rabbitmq.headers, delivery_mode=2),
        mandatory=True,
    )
    as_amqp = amqp.to_binary(binary, FORMAT)
    channel.basic_publish(
        args.exchange,
        args.topic,
        as_amqp.application_data,
        pika.BasicProperties(
            content_type=as_amqp.properties.get("content-type"),
            headers=as_amqp.application_properties,
            delivery_mode=2,
        ),
        mandatory=True,
    )
    connection.close()


def rabbitmq_consume(args):
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, args.exchange, routing_key=args.topic)
    ready()
    seen = 0
    for method, properties, body in channel.consume(queue, inactivity_timeout=TIMEOUT):
        if method is None:
            break
        message = amqp.AMQPMessage(
            properties={"content-type": properties.content_type} if properties.content_type else {},
            application_properties=dict(properties.headers or {}),
            application_data=body,
        )
        report(amqp.from_amqp(message, FORMAT))
        channel.basic_ack(method.delivery_tag)
        seen += 1
        if seen == args.count:
            break
    connection.close()


# --- Kafka ---------------------------------------------------------------------------------


def kafka_produce(args):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": args.bootstrap})
    structured, binary = events()
    for message in (kafka.to_structured(structured, FORMAT), kafka.to_binary(binary, FORMAT)):
        producer.produce(args.topic, value=message.value, key=message.key, headers=list(message.headers.items()))
    if producer.flush(TIMEOUT) != 0:
        sys.exit("kafka: messages left unsent")


def kafka_consume(args):
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"python-peer-{time.time_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([args.topic])
    ready()
    seen = 0
    deadline = time.time() + TIMEOUT
    while seen < args.count and time.time() < deadline:
        record = consumer.poll(1.0)
        if record is None or record.error():
            continue
        headers = {name: value for name, value in record.headers() or []}
        message = kafka.KafkaMessage(headers=headers, key=record.key(), value=record.value())
        report(kafka.from_kafka(message, FORMAT))
        seen += 1
    consumer.close()


# --- Google Cloud Pub/Sub ------------------------------------------------------------------


def pubsub_produce(args):
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(args.project, args.topic)
    structured, binary = events()
    futures = [
        publisher.publish(topic, FORMAT.write(structured), **{"content-type": FORMAT.get_content_type()}),
        publisher.publish(topic, FORMAT.write_data(binary.get_data(), binary.get_datacontenttype()), **pubsub_attributes(binary)),
    ]
    for future in futures:
        future.result(timeout=TIMEOUT)


def pubsub_consume(args):
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    topic = subscriber.topic_path(args.project, args.topic)
    subscription = subscriber.subscription_path(args.project, f"python-peer-{time.time_ns()}")
    subscriber.create_subscription(name=subscription, topic=topic)
    ready()
    seen = 0
    deadline = time.time() + TIMEOUT
    while seen < args.count and time.time() < deadline:
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=TIMEOUT)
        for received in response.received_messages:
            report(from_pubsub(received.message.data, dict(received.message.attributes)))
            subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
            seen += 1
    subscriber.delete_subscription(subscription=subscription)


# --- NATS JetStream ------------------------------------------------------------------------


def nats_produce(args):
    import asyncio

    import nats

    async def run():
        connection = await nats.connect(args.url)
        stream = connection.jetstream()
        structured, binary = events()
        for message in (http.to_structured(structured, FORMAT), http.to_binary(binary, FORMAT)):
            await stream.publish(args.topic, message.body, headers=message.headers)
        await connection.close()

    asyncio.run(run())


def nats_consume(args):
    import asyncio

    import nats
    from nats.js.api import DeliverPolicy

    async def run():
        connection = await nats.connect(args.url)
        stream = connection.jetstream()
        subscription = await stream.subscribe(args.topic, deliver_policy=DeliverPolicy.NEW)
        ready()
        for _ in range(args.count):
            received = await subscription.next_msg(timeout=TIMEOUT)
            headers = {name.lower(): value for name, value in (received.headers or {}).items()}
            report(http.from_http(http.HTTPMessage(headers=headers, body=received.data), FORMAT))
            await received.ack()
        await connection.close()

    asyncio.run(run())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["produce", "consume"])
    parser.add_argument("--backend", required=True, choices=["redis", "rabbitmq", "kafka", "pubsub", "nats"])
    parser.add_argument("--topic", required=True, help="the bus's topic of `interop.event`")
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--url", help="Redis, RabbitMQ or NATS URL")
    parser.add_argument("--exchange", help="RabbitMQ: the bus's exchange (its topic prefix)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers")
    parser.add_argument("--project", default="local-project", help="Pub/Sub project")
    args = parser.parse_args()
    globals()[f"{args.backend}_{args.action}"](args)


if __name__ == "__main__":
    main()
