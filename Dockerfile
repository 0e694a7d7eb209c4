# One image for every service: the locked environment, the package, DAGs and dbt project.
FROM python:3.11-slim
ENV UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
# a C compiler and OpenSSL's headers for the package's access-log parser (extract/_logparse.c,
# which links libcrypto for the visitor ids' HMAC; the image has the runtime libssl3)
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv==0.13.9
WORKDIR /opt/engagement
COPY pyproject.toml uv.lock README.md setup.py ./
# WITH_SPARK=true: Java and the spark group, for ENGAGEMENT_WAREHOUSE_ENGINE=spark
ARG WITH_SPARK=false
RUN if [ "$WITH_SPARK" = true ]; then apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*; fi
RUN uv sync --locked --no-dev --no-install-project --compile-bytecode \
    $([ "$WITH_SPARK" = true ] && echo --group spark)
COPY extract ./extract
COPY engagement ./engagement
COPY devtools ./devtools
COPY dags ./dags
COPY dbt_project ./dbt_project
RUN uv sync --locked --no-dev $([ "$WITH_SPARK" = true ] && echo --group spark)
