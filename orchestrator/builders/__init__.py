"""Building: what a kind's ``build`` does with a Job (``orchestrator.kinds`` decides what).

``files`` publishes what a command makes, ``image`` builds Docker images, ``library``
archives a commit; ``common`` holds the job, commands, staging and publishing they share.
"""
