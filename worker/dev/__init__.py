"""``optout dev``: the embedded broker and Postgres, and the stack that runs on them."""
