from django.db import migrations

# The audit history is append-only: rows may be inserted, and deleted by retention pruning,
# but never changed.
FORBID_UPDATE = """
CREATE FUNCTION conferences_audit_forbid_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit history is append-only';
END $$;
CREATE TRIGGER conferences_audit_append_only BEFORE UPDATE ON conferences_auditentry
    FOR EACH ROW EXECUTE FUNCTION conferences_audit_forbid_update();
"""

ALLOW_UPDATE = """
DROP TRIGGER conferences_audit_append_only ON conferences_auditentry;
DROP FUNCTION conferences_audit_forbid_update();
"""


class Migration(migrations.Migration):
    dependencies = [("conferences", "0001_initial")]

    operations = [migrations.RunSQL(FORBID_UPDATE, ALLOW_UPDATE)]
