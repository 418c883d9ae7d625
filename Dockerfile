# One image for the worker, the API and migrations (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY . .
RUN pip install --no-cache-dir -e .
USER nobody
CMD ["python", "worker.py"]
