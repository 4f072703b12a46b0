"""What people, judges and code say about traces. A feature's modules share a prefix:

- review page: views, forms; writes: services (the only writer), validation
- queues: queues (rules), queue_views, queue_forms; agreement (statistics);
  quality, quality_views (control items, accuracy, pace); span_questions,
  span_question_forms (questions asked of matching spans); session_items,
  session_item_views, session_item_forms (items that are whole sessions)
- schemas: schema_views, schema_forms; in MLflow's shape: label_schema_wire
- MLflow review queues: review_queues (rules), genai_api (with label schemas)
- evaluation datasets: datasets (rules), datasets_api, dataset_views, dataset_forms
- export: export, export_views, management/commands/export_assessments
- gold values: gold; judges: judges (statistics), judge_report, judge_views
- overview: overview, overview_views; sessions: session_views
- MLflow API: api, api_urls, serializers; annotator activity: people; demo: demo, demo_content

docs/architecture.md has the whole map.
"""
