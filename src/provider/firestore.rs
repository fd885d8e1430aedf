//! Firestore Admin v1 through `google-cloud-firestore-admin-v1`: databases (list, create,
//! update of delete protection and point-in-time recovery, delete) and TTL policies on
//! collection-group fields, every write a long-running operation.

use google_cloud_firestore_admin_v1::model as gm;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, creating, retrying};
use super::run::{OperationObserver, wait_for};
use crate::config::TtlField;

pub use crate::model::live::firestore::FirestoreRecord;

/// What stackctl writes on a database.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FirestoreWrite {
    /// `projects/P/databases/ID`
    pub name: String,
    pub location: String,
    /// `FIRESTORE_NATIVE` or `DATASTORE_MODE`.
    pub database_type: String,
    pub delete_protection: bool,
    pub point_in_time_recovery: bool,
}

fn protection_state(enabled: bool) -> gm::database::DeleteProtectionState {
    if enabled {
        gm::database::DeleteProtectionState::DeleteProtectionEnabled
    } else {
        gm::database::DeleteProtectionState::DeleteProtectionDisabled
    }
}

fn recovery(enabled: bool) -> gm::database::PointInTimeRecoveryEnablement {
    if enabled {
        gm::database::PointInTimeRecoveryEnablement::PointInTimeRecoveryEnabled
    } else {
        gm::database::PointInTimeRecoveryEnablement::PointInTimeRecoveryDisabled
    }
}

fn record_from_api(d: gm::Database, ttl: Vec<TtlField>) -> FirestoreRecord {
    FirestoreRecord {
        name: d.name,
        location: d.location_id,
        database_type: d
            .r#type
            .name()
            .unwrap_or("DATABASE_TYPE_UNSPECIFIED")
            .to_string(),
        delete_protection: d.delete_protection_state
            == gm::database::DeleteProtectionState::DeleteProtectionEnabled,
        point_in_time_recovery: d.point_in_time_recovery_enablement
            == gm::database::PointInTimeRecoveryEnablement::PointInTimeRecoveryEnabled,
        free_tier: d.free_tier.unwrap_or(false),
        etag: d.etag,
        ttl,
    }
}

/// `projects/P/databases/D/collectionGroups/C/fields/F` as a [`TtlField`].
fn ttl_field_of(name: &str) -> Option<TtlField> {
    let (_, rest) = name.split_once("/collectionGroups/")?;
    let (group, field) = rest.split_once("/fields/")?;
    Some(TtlField {
        collection_group: group.to_string(),
        field: field.to_string(),
    })
}

/// The field resource name of a TTL policy on `database`.
pub fn ttl_field_name(database: &str, ttl: &TtlField) -> String {
    format!(
        "{database}/collectionGroups/{}/fields/{}",
        ttl.collection_group, ttl.field
    )
}

impl Cloud {
    /// Every database of the project, with its TTL policies.
    pub async fn list_firestore_databases(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<FirestoreRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        let listed = retrying(self.backoff, observer, || async {
            self.firestore
                .list_databases()
                .set_parent(&parent)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("firestore.databases.list", &parent, &e))
        })
        .await?;
        let mut out = Vec::new();
        for database in listed.databases {
            let ttl = self.list_ttl_fields(&database.name, observer).await?;
            out.push(record_from_api(database, ttl));
        }
        Ok(out)
    }

    /// The fields of `database` that carry a TTL policy (`fields.list` on every collection
    /// group, filtered to `ttlConfig:*`).
    async fn list_ttl_fields(
        &self,
        database: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<TtlField>, ApiError> {
        let parent = format!("{database}/collectionGroups/-");
        let fields = super::retry::all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.firestore
                        .list_fields()
                        .set_parent(&parent)
                        .set_filter("ttlConfig:*")
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::from_gax(
                                "firestore.collectionGroups.fields.list",
                                &parent,
                                &e,
                            )
                        })
                })
                .await?;
                Ok((page.fields, page.next_page_token))
            }
        })
        .await?;
        let mut ttl: Vec<TtlField> = fields
            .into_iter()
            .filter(|f| f.ttl_config.is_some())
            .filter_map(|f| ttl_field_of(&f.name))
            .collect();
        ttl.sort();
        Ok(ttl)
    }

    pub async fn get_firestore_database(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<FirestoreRecord>, ApiError> {
        let database = retrying(self.backoff, observer, || async {
            self.firestore
                .get_database()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("firestore.databases.get", name, &e))
        })
        .await
        .not_found_as_none()?;
        match database {
            Some(database) => {
                let ttl = self.list_ttl_fields(name, observer).await?;
                Ok(Some(record_from_api(database, ttl)))
            }
            None => Ok(None),
        }
    }

    /// Creates the database and waits for its operation; one already there is answered as
    /// [`Created::Exists`] for the caller to judge.
    pub async fn create_firestore_database(
        &self,
        write: &FirestoreWrite,
        observer: &dyn OperationObserver,
    ) -> Result<Created<()>, ApiError> {
        let parent = format!("projects/{}", self.project);
        let id = write
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let database = gm::Database::new()
            .set_location_id(&write.location)
            .set_type(gm::database::DatabaseType::from(
                write.database_type.as_str(),
            ))
            .set_delete_protection_state(protection_state(write.delete_protection))
            .set_point_in_time_recovery_enablement(recovery(write.point_in_time_recovery));
        let created = creating(self.backoff, observer, || {
            let poller = self
                .firestore
                .create_database()
                .set_parent(&parent)
                .set_database_id(&id)
                .set_database(database.clone())
                .poller();
            wait_for("firestore.databases.create", &write.name, poller, observer)
        })
        .await?;
        Ok(created.map(drop))
    }

    /// Writes delete protection and point-in-time recovery (the fields that may change).
    pub async fn update_firestore_database(
        &self,
        write: &FirestoreWrite,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let database = gm::Database::new()
            .set_name(&write.name)
            .set_delete_protection_state(protection_state(write.delete_protection))
            .set_point_in_time_recovery_enablement(recovery(write.point_in_time_recovery));
        let mask = google_cloud_wkt::FieldMask::default().set_paths([
            "delete_protection_state",
            "point_in_time_recovery_enablement",
        ]);
        retrying(self.backoff, observer, || {
            let poller = self
                .firestore
                .update_database()
                .set_database(database.clone())
                .set_update_mask(mask.clone())
                .poller();
            wait_for("firestore.databases.patch", &write.name, poller, observer)
        })
        .await
        .map(drop)
    }

    /// Sets (`enabled`) or removes the TTL policy on one collection group's field.
    pub async fn set_firestore_ttl(
        &self,
        database: &str,
        ttl: &TtlField,
        enabled: bool,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let name = ttl_field_name(database, ttl);
        let mut field = gm::Field::new().set_name(&name);
        if enabled {
            field = field.set_ttl_config(gm::field::TtlConfig::new());
        }
        let mask = google_cloud_wkt::FieldMask::default().set_paths(["ttl_config"]);
        retrying(self.backoff, observer, || {
            let poller = self
                .firestore
                .update_field()
                .set_field(field.clone())
                .set_update_mask(mask.clone())
                .poller();
            wait_for(
                "firestore.collectionGroups.fields.patch",
                &name,
                poller,
                observer,
            )
        })
        .await
        .map(drop)
    }

    pub async fn delete_firestore_database(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.firestore.delete_database().set_name(name).poller();
            wait_for("firestore.databases.delete", name, poller, observer)
        })
        .await
        .not_found_as_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_policies_are_read_back_from_field_names() {
        let ttl = TtlField {
            collection_group: "webhook_deliveries".into(),
            field: "expire_at".into(),
        };
        let name = ttl_field_name("projects/p/databases/(default)", &ttl);
        assert_eq!(
            name,
            "projects/p/databases/(default)/collectionGroups/webhook_deliveries/fields/expire_at"
        );
        assert_eq!(ttl_field_of(&name), Some(ttl));
    }
}
