#include <gtest/gtest.h>
#include "reconcilers/replicaset.h"
TEST(Placeholder, SlotName) { EXPECT_EQ(pgrs::reconcilers::SlotName("demo-2"), "pgrs_demo_2"); }
