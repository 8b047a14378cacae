pub mod test_db;
