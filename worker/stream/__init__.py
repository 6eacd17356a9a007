"""The Kafka side: clients, the shared loop, the classifier and projector loops, the batch step."""
