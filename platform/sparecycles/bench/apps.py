from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "sparecycles.bench"
    verbose_name = "Benchmarks"
