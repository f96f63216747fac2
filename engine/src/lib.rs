pub fn x(){}

pub mod delivery;
