-- SQLite twin of migrations/postgres/2026-11-28-000004_categories/up.sql: same rows.
-- The category tree that venues point at (venues.category_id; served by GET /v1/categories).
-- Ids are stable API identifiers: clients store them and send them back, so later migrations
-- only add rows and never rename (or reuse) an id. parent_id is a foreign key, so parents are
-- inserted before children: the 13 top-level categories, then their sub-categories, then a few
-- third-level ones. The tree is at most three levels deep.

-- Top level.
INSERT INTO categories (id, parent_id, name) VALUES
    ('food', NULL, 'Food'),
    ('coffee', NULL, 'Coffee & Tea'),
    ('nightlife', NULL, 'Nightlife'),
    ('outdoors', NULL, 'Outdoors & Recreation'),
    ('arts', NULL, 'Arts & Entertainment'),
    ('travel', NULL, 'Travel & Transport'),
    ('shops', NULL, 'Shops & Services'),
    ('work', NULL, 'Professional & Work'),
    ('home', NULL, 'Residence'),
    ('education', NULL, 'College & Education'),
    ('health', NULL, 'Health & Medicine'),
    ('sports', NULL, 'Sports & Fitness'),
    ('community', NULL, 'Community & Government');

-- Second level, one statement per top-level category.

INSERT INTO categories (id, parent_id, name) VALUES
    ('restaurant', 'food', 'Restaurant'),
    ('pizza', 'food', 'Pizza Place'),
    ('burger', 'food', 'Burger Joint'),
    ('sushi', 'food', 'Sushi Restaurant'),
    ('ramen', 'food', 'Ramen Shop'),
    ('tacos', 'food', 'Taco Place'),
    ('bakery', 'food', 'Bakery'),
    ('vegetarian', 'food', 'Vegetarian & Vegan Restaurant'),
    ('fast-food', 'food', 'Fast Food Restaurant'),
    ('food-truck', 'food', 'Food Truck'),
    ('ice-cream-shop', 'food', 'Ice Cream Shop');

INSERT INTO categories (id, parent_id, name) VALUES
    ('cafe', 'coffee', 'Cafe'),
    ('coffee-shop', 'coffee', 'Coffee Shop'),
    ('tea-room', 'coffee', 'Tea Room'),
    ('bubble-tea', 'coffee', 'Bubble Tea Shop'),
    ('juice-bar', 'coffee', 'Juice Bar');

INSERT INTO categories (id, parent_id, name) VALUES
    ('bar', 'nightlife', 'Bar'),
    ('pub', 'nightlife', 'Pub'),
    ('cocktail-bar', 'nightlife', 'Cocktail Bar'),
    ('wine-bar', 'nightlife', 'Wine Bar'),
    ('brewery', 'nightlife', 'Brewery'),
    ('sports-bar', 'nightlife', 'Sports Bar'),
    ('nightclub', 'nightlife', 'Nightclub'),
    ('karaoke', 'nightlife', 'Karaoke Bar');

INSERT INTO categories (id, parent_id, name) VALUES
    ('park', 'outdoors', 'Park'),
    ('beach', 'outdoors', 'Beach'),
    ('hiking-trail', 'outdoors', 'Hiking Trail'),
    ('playground', 'outdoors', 'Playground'),
    ('garden', 'outdoors', 'Garden'),
    ('plaza', 'outdoors', 'Plaza'),
    ('scenic-lookout', 'outdoors', 'Scenic Lookout'),
    ('campground', 'outdoors', 'Campground'),
    ('lake', 'outdoors', 'Lake');

INSERT INTO categories (id, parent_id, name) VALUES
    ('museum', 'arts', 'Museum'),
    ('art-gallery', 'arts', 'Art Gallery'),
    ('movie-theater', 'arts', 'Movie Theater'),
    ('theater', 'arts', 'Theater'),
    ('concert-hall', 'arts', 'Concert Hall'),
    ('music-venue', 'arts', 'Music Venue'),
    ('stadium', 'arts', 'Stadium'),
    ('zoo', 'arts', 'Zoo'),
    ('aquarium', 'arts', 'Aquarium');

INSERT INTO categories (id, parent_id, name) VALUES
    ('airport', 'travel', 'Airport'),
    ('train-station', 'travel', 'Train Station'),
    ('bus-station', 'travel', 'Bus Station'),
    ('metro-station', 'travel', 'Metro Station'),
    ('ferry-terminal', 'travel', 'Ferry Terminal'),
    ('hotel', 'travel', 'Hotel'),
    ('hostel', 'travel', 'Hostel'),
    ('parking', 'travel', 'Parking'),
    ('gas-station', 'travel', 'Gas Station'),
    ('ev-charging-station', 'travel', 'EV Charging Station');

INSERT INTO categories (id, parent_id, name) VALUES
    ('supermarket', 'shops', 'Supermarket'),
    ('convenience-store', 'shops', 'Convenience Store'),
    ('bookstore', 'shops', 'Bookstore'),
    ('clothing-store', 'shops', 'Clothing Store'),
    ('electronics-store', 'shops', 'Electronics Store'),
    ('shopping-mall', 'shops', 'Shopping Mall'),
    ('farmers-market', 'shops', 'Farmers Market'),
    ('bank', 'shops', 'Bank'),
    ('hair-salon', 'shops', 'Hair Salon');

INSERT INTO categories (id, parent_id, name) VALUES
    ('office', 'work', 'Office'),
    ('coworking-space', 'work', 'Coworking Space'),
    ('meeting-room', 'work', 'Meeting Room'),
    ('convention-center', 'work', 'Convention Center'),
    ('tech-startup', 'work', 'Tech Startup'),
    ('factory', 'work', 'Factory');

INSERT INTO categories (id, parent_id, name) VALUES
    ('private-home', 'home', 'Private Home'),
    ('apartment-building', 'home', 'Apartment Building'),
    ('housing-development', 'home', 'Housing Development'),
    ('assisted-living', 'home', 'Assisted Living'),
    ('mobile-home-park', 'home', 'Mobile Home Park');

INSERT INTO categories (id, parent_id, name) VALUES
    ('university', 'education', 'University'),
    ('college', 'education', 'College'),
    ('community-college', 'education', 'Community College'),
    ('high-school', 'education', 'High School'),
    ('middle-school', 'education', 'Middle School'),
    ('elementary-school', 'education', 'Elementary School'),
    ('lecture-hall', 'education', 'Lecture Hall'),
    ('student-center', 'education', 'Student Center'),
    ('residence-hall', 'education', 'Residence Hall');

INSERT INTO categories (id, parent_id, name) VALUES
    ('hospital', 'health', 'Hospital'),
    ('emergency-room', 'health', 'Emergency Room'),
    ('urgent-care', 'health', 'Urgent Care Center'),
    ('medical-clinic', 'health', 'Medical Clinic'),
    ('dentist', 'health', 'Dentist'),
    ('pharmacy', 'health', 'Pharmacy'),
    ('optometrist', 'health', 'Optometrist'),
    ('veterinarian', 'health', 'Veterinarian');

INSERT INTO categories (id, parent_id, name) VALUES
    ('gym', 'sports', 'Gym'),
    ('yoga-studio', 'sports', 'Yoga Studio'),
    ('swimming-pool', 'sports', 'Swimming Pool'),
    ('climbing-gym', 'sports', 'Climbing Gym'),
    ('tennis-court', 'sports', 'Tennis Court'),
    ('basketball-court', 'sports', 'Basketball Court'),
    ('soccer-field', 'sports', 'Soccer Field'),
    ('golf-course', 'sports', 'Golf Course');

INSERT INTO categories (id, parent_id, name) VALUES
    ('city-hall', 'community', 'City Hall'),
    ('courthouse', 'community', 'Courthouse'),
    ('post-office', 'community', 'Post Office'),
    ('police-station', 'community', 'Police Station'),
    ('fire-station', 'community', 'Fire Station'),
    ('library', 'community', 'Library'),
    ('community-center', 'community', 'Community Center'),
    ('place-of-worship', 'community', 'Place of Worship');

-- Third level.

INSERT INTO categories (id, parent_id, name) VALUES
    ('italian-restaurant', 'restaurant', 'Italian Restaurant'),
    ('chinese-restaurant', 'restaurant', 'Chinese Restaurant'),
    ('indian-restaurant', 'restaurant', 'Indian Restaurant'),
    ('thai-restaurant', 'restaurant', 'Thai Restaurant'),
    ('french-restaurant', 'restaurant', 'French Restaurant'),
    ('seafood-restaurant', 'restaurant', 'Seafood Restaurant');

INSERT INTO categories (id, parent_id, name) VALUES
    ('church', 'place-of-worship', 'Church'),
    ('mosque', 'place-of-worship', 'Mosque'),
    ('synagogue', 'place-of-worship', 'Synagogue'),
    ('temple', 'place-of-worship', 'Temple');
