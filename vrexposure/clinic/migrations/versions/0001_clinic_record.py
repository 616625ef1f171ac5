"""The clinic record: patients, courses, hierarchy versions, session index, questionnaires,
notes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "patients",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_utc", tz, nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_patients"))
    op.create_table(
        "treatment_courses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(32), nullable=False),
        sa.Column("target_phobia", sa.String(64), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("created_utc", tz, nullable=False),
        sa.CheckConstraint("phase IN ('assessment', 'treatment', 'follow-up')",
                           name="ck_treatment_courses_phase"),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name="fk_treatment_courses_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_treatment_courses"))
    op.create_index("ix_treatment_courses_patient_id", "treatment_courses", ["patient_id"])
    op.create_table(
        "hierarchy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hierarchy_id", sa.String(64), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("created_utc", tz, nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name="fk_hierarchy_versions_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_hierarchy_versions"),
        sa.UniqueConstraint("patient_id", "version", name="uq_hierarchy_version"))
    op.create_index("ix_hierarchy_versions_patient_id", "hierarchy_versions", ["patient_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(32), nullable=False),
        sa.Column("recording_path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("started_utc", sa.String(40), nullable=False),
        sa.Column("hierarchy_id", sa.String(64), nullable=False),
        sa.Column("hierarchy_version", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("highest_step", sa.Integer(), nullable=True),
        sa.Column("stops", sa.Integer(), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("baseline_mean_bpm", sa.Float(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("indexed_utc", tz, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name="fk_sessions_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.UniqueConstraint("session_id", name="uq_sessions_session_id"),
        sa.UniqueConstraint("recording_path", name="uq_sessions_recording_path"))
    op.create_index("ix_sessions_patient_id", "sessions", ["patient_id"])
    op.create_table(
        "questionnaire_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(32), nullable=False),
        sa.Column("questionnaire_id", sa.String(64), nullable=False),
        sa.Column("time_utc", tz, nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("source_recording", sa.String(1024), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name="fk_questionnaire_results_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_questionnaire_results"))
    op.create_index("ix_questionnaire_results_patient_id", "questionnaire_results",
                    ["patient_id"])
    op.create_table(
        "session_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("time_utc", tz, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name="fk_session_notes_patient_id_patients"),
        sa.PrimaryKeyConstraint("id", name="pk_session_notes"))
    op.create_index("ix_session_notes_patient_id", "session_notes", ["patient_id"])


def downgrade() -> None:
    for table in ("session_notes", "questionnaire_results", "sessions", "hierarchy_versions",
                  "treatment_courses", "patients"):
        op.drop_table(table)
